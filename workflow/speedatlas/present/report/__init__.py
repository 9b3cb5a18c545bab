"""The Markdown report: sections computed from the tables, findings in words, the HTML page."""
