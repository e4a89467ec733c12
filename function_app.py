"""modelops-reactor as an Azure Functions app (Python v2 model): builds the app, registers blueprints."""

from functions import build_function_app
from shared.bootstrap import Container

container = Container.from_env()  # settings read and the config validated once, at indexing
app = build_function_app(container)
