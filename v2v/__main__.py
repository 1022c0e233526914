from v2v.cli import app

app()
