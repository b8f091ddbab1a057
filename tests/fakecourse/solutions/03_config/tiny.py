import os
import sys

from flask import Flask

app = Flask(__name__)
app.config.from_prefixed_env("SHORTLY")
if not app.config.get("SECRET_KEY"):
    sys.exit("missing required config: set SHORTLY_SECRET_KEY")


@app.get("/")
def home():
    return "tiny " + os.environ.get("SHORTLY_GREETING", "")
