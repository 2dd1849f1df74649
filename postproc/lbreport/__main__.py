from lbreport.cli import app

app(prog_name="lbreport")
