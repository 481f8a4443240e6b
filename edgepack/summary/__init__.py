"""The tables people read about a run, a search, the budgets, a comparison and a microcontroller, built as
neutral `edgepack.table.Table`s: the CLI renders them for the terminal, JSON and Markdown, the HTML report
as HTML. Nothing here imports a renderer or the CLI."""
