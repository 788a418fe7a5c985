"""The web app: Starlette routes, pages and the JSON API."""
