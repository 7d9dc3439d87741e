#!/usr/bin/env python3
"""moto's server as moto_with_refresh.py runs it, plus resource-aware IAM evaluation of CloudWatch
Logs requests (our test extension): moto's own enforcement checks logs actions against Resource "*"
only, so a policy scoped to one log group could be neither satisfied nor violated. Here a logs
request is checked against the ARN of the log group it names (arn:aws:logs:REGION:ACCOUNT:
log-group:NAME:*), or of the stream for CreateLogStream/PutLogEvents (...:log-group:NAME:
log-stream:STREAM), with the same evaluator moto_scoped_iam.py uses for EC2 and Auto Scaling.

Usage: moto_logs_iam.py -H 127.0.0.1 -p PORT   (with INITIAL_NO_AUTH_ACTION_COUNT and
KILN_MOTO_RESOURCE_POLICIES=1 in the environment)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_with_refresh  # noqa: E402,F401  (its patches, and moto_scoped_iam when asked)
import moto_scoped_iam  # noqa: E402
from moto.iam import access_control  # noqa: E402
from moto.server import main as moto_main  # noqa: E402

STREAM_ACTIONS = ("CreateLogStream", "PutLogEvents")


def log_resource(req):
    """The ARN a CloudWatch Logs request acts on."""
    action = req._action.split(":", 1)[1]
    try:
        body = json.loads(req._body or b"{}")
    except ValueError:
        body = {}
    base = "arn:aws:logs:%s:%s:log-group:" % (req._region, req.account_id)
    group = body.get("logGroupName")
    if not group:
        return base + "*"
    if action in STREAM_ACTIONS:
        return base + "%s:log-stream:%s" % (group, body.get("logStreamName", "*"))
    return base + group + ":*"


_previous = access_control.IAMRequestBase.check_action_permitted


def check_action_permitted(self, resource):
    if not self._action.startswith("logs:"):
        return _previous(self, resource)
    policies = moto_scoped_iam._policy_documents(self)
    if not moto_scoped_iam._decide(policies, self._action, log_resource(self), {}):
        self._raise_access_denied()


access_control.IAMRequestBase.check_action_permitted = check_action_permitted

if __name__ == "__main__":
    moto_main(sys.argv[1:])
