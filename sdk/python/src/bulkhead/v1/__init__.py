"""Generated from proto/bulkhead/v1 by grpcio-tools (see generate.py; a
test fails when these files drift from the protos). Do not edit."""
