"""Views of finished results: the rich terminal tables and the Markdown report."""
