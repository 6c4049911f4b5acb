"""The front door: the Open Inference Protocol (KServe v2) over HTTP.

`protocol` parses and checks requests and encodes responses, `app` routes them to an
`InferenceService` (`model` declares what a service is), and `server` runs the app with uvicorn.
Nothing here knows about codes or instances.
"""
