"""Show the tables: plots, the Markdown/HTML report and the publish bundle."""
