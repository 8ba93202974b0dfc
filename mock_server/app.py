"""The app factory: one Flask app per Config, wired to its own services (no global state)."""

from __future__ import annotations

from flask import Flask

from mock_server.config import Config, ConfigError
from mock_server.services import Services, build_services
from mock_server.spec.document import SpecDocument
from mock_server.spec.responses import ResponseChecker
from mock_server.web import account, ai, auth, batch, control, dashboard, market, orders, routing, stream, webhooks
from mock_server.web.errors import install_error_handlers
from mock_server.web.flask_app import EmulatorFlask
from mock_server.web.json_provider import FastJSONProvider
from mock_server.web.lifecycle import install_lifecycle
from mock_server.web.routing import Api

BLUEPRINTS = (auth, orders, account, market, ai, batch, control, webhooks, dashboard)


def create_app(config: Config | None = None, *, services: Services | None = None,
               document: SpecDocument | None = None) -> Flask:
    config = config or Config()
    services = services or build_services(config)
    document = document or SpecDocument.load()
    app = EmulatorFlask("mock_server", static_folder=None)  # no /static route: every route is in the spec
    app.url_map.converters.update(routing.CONVERTERS)
    app.config.update(MAX_CONTENT_LENGTH=config.max_body_bytes, JSON_SORT_KEYS=False,
                      SOCK_SERVER_OPTIONS=dict(stream.SERVER_OPTIONS))
    provider = FastJSONProvider(app)
    provider.sort_keys = False  # answers keep the spec's field order
    app.json = provider
    app.extensions["tradefence"] = services
    app.extensions["tradefence.spec"] = document

    if config.beyond_loopback and not config.control_token:
        raise ConfigError(f"control_token: listening on {config.host or 'every address'} lets other machines in, so "
                          "the control plane needs a token (TRADEFENCE_CONTROL_TOKEN; the CLI makes one)")
    api = Api(document, app.extensions, control_token=config.control_token if config.beyond_loopback else None)
    app.extensions["tradefence.api"] = api
    for module in BLUEPRINTS:
        app.register_blueprint(module.blueprint(api))
    missing = api.missing_handlers()
    if missing:
        raise RuntimeError(f"operations in openapi.yaml without a handler: {', '.join(missing)}")
    # The market-data websocket is not an OpenAPI operation (its messages are schemas in the spec), so it is
    # routed beside the Api; call `services.close()` at shutdown to close its sockets properly.
    stream.register(app, document)

    install_error_handlers(app)
    checker = ResponseChecker(document) if config.validate_responses else None
    install_lifecycle(app, api, checker)
    return app
