"""The local stack: the synthesized CDK template deployed into moto in one process, the Lambda
handlers run in-process, and an HTTP server that turns requests into API Gateway proxy events."""
