"""Web page routers, one module per page group; ``app.web.install`` includes them in order."""
