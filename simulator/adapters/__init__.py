"""The simulator's adapters: the only simulator code that imports the app.

`wiring` lends the core the app's Redis, token and rules; `provider` is the app's phone
provider on the simulated network; `views` the dev phone page at /simulator; `cli` the
`flask --app wsgi simulator ...` commands; `demo` what the demo sets on simulated phones.
`create_app` (core/app.py) brings each in.
"""
