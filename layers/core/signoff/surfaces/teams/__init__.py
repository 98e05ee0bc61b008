"""The Microsoft Teams surface of Signoff's approval gates, on the Bot Connector's REST API with
PyJWT (the Bot Framework SDK reached end of life): inbound JWT checks (`auth`), Adaptive Cards with
Universal Actions (`cards`), what a click carries (`inputs`), the REST client (`connector`), the
Chat port (`chat`), conversation references and retried activities (`store`), who clicked
(`identity`), follow-up work after a click (`followups`) and POST /v1/teams/messages (`app`).

Nothing here is imported by functions that do not talk to Teams."""
