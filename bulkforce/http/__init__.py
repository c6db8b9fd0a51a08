"""ASGI front: routing, auth, request bodies; handlers parse, call the service, render."""
