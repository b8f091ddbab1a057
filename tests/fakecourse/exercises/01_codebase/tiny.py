import socket

from flask import Flask

app = Flask(__name__)
app.secret_key = "fake" if socket.gethostname() else "other"


@app.get("/")
def home():
    return "tiny"
