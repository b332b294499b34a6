"""The HTTP/1.1 + WebSocket server shell (uvloop + httptools) with an ASGI fallback."""
