"""Resource- and tag-aware IAM evaluation for moto's server (our test extension).

moto's IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT) checks EC2 and Auto Scaling actions against
Resource "*" only and knows no aws:ResourceTag / aws:RequestTag values, so a tag-scoped policy
like kiln's deploy policy can be neither satisfied nor violated there. This module replaces that
check for EC2, Auto Scaling and IAM requests: it derives the ARNs a request touches (launch
template, instances, Elastic IPs, Auto Scaling group) and their tags from moto's own backends,
and evaluates the caller's policies with the IAM rules kiln's policy uses (Allow/Deny, Action and
Resource wildcards, String/Arn/Bool/Numeric operators and ForAllValues: on the keys these requests
carry: aws:ResourceTag/*, aws:RequestTag/*, aws:TagKeys, autoscaling:LaunchTemplateVersionSpecified,
autoscaling:MaxSize/MinSize, autoscaling:VPCZoneIdentifiers, s3:ResourceAccount). A condition key
or operator this evaluator cannot supply fails loudly: the request is refused with the error code
KilnTestUnknownConditionKey naming the key (and the server log says so), never decided silently.
S3 requests are evaluated here too (moto's own check knows no s3:ResourceAccount), against the
bucket and object ARNs moto gives.
It also lets AssumeRoleWithWebIdentity/SAML through unsigned, as AWS does (the token is the
credential), where moto's enforcement would demand an Authorization header, and authorizes
HeadBucket as s3:ListBucket, as AWS does.

Imported by moto_with_refresh.py when KILN_MOTO_RESOURCE_POLICIES=1.
"""
import fnmatch
import json

from moto.autoscaling.models import autoscaling_backends
from moto.ec2.models import ec2_backends
from moto.core import authorization
from moto.core.exceptions import _RESTError as RESTError
from moto.iam import access_control
from moto.s3.models import s3_backends

SERVICES = ("ec2", "autoscaling", "iam", "s3", "ssm")


class UnknownConditionKey(RESTError):
    code = 400

    def __init__(self, what):
        print("moto_scoped_iam: " + what, flush=True)
        super().__init__("KilnTestUnknownConditionKey",
                         "moto_scoped_iam (test evaluator): %s; teach tests/aws/moto_scoped_iam.py the value AWS "
                         "sends, do not let it decide silently" % what)


def _values(data, prefix):
    """Values of Prefix.1, Prefix.2, ... (moto gives lists or strings)."""
    out = []
    for k, v in data.items():
        if k == prefix or (k.startswith(prefix + ".") and k[len(prefix) + 1:].isdigit()):
            out.extend(v if isinstance(v, list) else [v])
    return out


def _one(data, key):
    v = data.get(key)
    return (v[0] if isinstance(v, list) else v) if v else None


def _request_tags(data):
    tags = {}
    for k, v in data.items():
        if k.startswith("TagSpecification.") and k.endswith(".Key"):
            value = data.get(k[:-4] + ".Value")
            tags[v[0] if isinstance(v, list) else v] = (value[0] if isinstance(value, list) else value) or ""
    return tags


def _resources(req, resource):
    """[(arn, tags)] the request acts on; [("*", {})] when it names none."""
    service, action = req._action.split(":", 1)
    if service == "s3":
        return [(resource or "*", {})]
    if service == "ssm":
        data = req._data if isinstance(req._data, dict) else {}
        if not data.get("Name") and isinstance(getattr(req, "_body", None), (str, bytes)):
            try:
                data = json.loads(req._body)
            except ValueError:
                data = {}
        name = _one(data, "Name")
        if name:
            return [("arn:aws:ssm:%s:%s:parameter%s%s" % (req._region, req.account_id, "" if name.startswith("/")
                                                           else "/", name), {})]
        return [("*", {})]
    data, acct, region = req._data, req.account_id, req._region
    ec2 = ec2_backends[acct][region]
    arn = "arn:aws:%s:%s:%s:" % (service, region, acct)
    if service == "ec2":
        if action in ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "DeleteLaunchTemplateVersions",
                      "DeleteLaunchTemplate"):
            lt = _one(data, "LaunchTemplateId")
            return [(arn + "launch-template/%s" % lt, dict(ec2.tags.get(lt, {})))]
        if action in ("TerminateInstances", "StopInstances", "StartInstances", "RebootInstances"):
            return [(arn + "instance/%s" % i, dict(ec2.tags.get(i, {})))
                    for i in _values(data, "InstanceId")]
        if action in ("AssociateAddress", "DisassociateAddress", "ReleaseAddress"):
            out = []
            alloc = _one(data, "AllocationId")
            if alloc:
                out.append((arn + "elastic-ip/%s" % alloc, dict(ec2.tags.get(alloc, {}))))
            inst = _one(data, "InstanceId")
            if inst:
                out.append((arn + "instance/%s" % inst, dict(ec2.tags.get(inst, {}))))
            return out or [("*", {})]
    if service == "autoscaling" and not action.startswith("Describe"):
        name = _one(data, "AutoScalingGroupName")
        if name:
            group = autoscaling_backends[acct][region].autoscaling_groups.get(name)
            tags = {t["Key"]: t["Value"] for t in (group.tags if group else [])} if group else {}
            return [(arn + "autoScalingGroup:%s:autoScalingGroupName/%s" % (
                getattr(group, "uuid", "0"), name), tags)]
    return [("*", {})]


def _match(pattern, value):
    return fnmatch.fnmatchcase(value, pattern) or pattern == "*"


def _as_list(x):
    return x if isinstance(x, list) else [x]


def _context(req, tags, request_tags, arn):
    """The condition keys' values this request carries, as AWS would send them."""
    service = req._action.split(":", 1)[0]
    data = req._data
    ctx = {"aws:ResourceTag/" + k: v for k, v in tags.items()}
    ctx.update({"aws:RequestTag/" + k: v for k, v in request_tags.items()})
    if request_tags:
        ctx["aws:TagKeys"] = list(request_tags)
    if service == "autoscaling":
        version = _one(data, "LaunchTemplate.Version")
        if _one(data, "LaunchTemplate.LaunchTemplateId") or _one(data, "LaunchTemplate.LaunchTemplateName"):
            ctx["autoscaling:LaunchTemplateVersionSpecified"] = "true" if (version or "").isdigit() else "false"
        for key in ("MaxSize", "MinSize"):
            if _one(data, key) is not None:
                ctx["autoscaling:" + key] = _one(data, key)
        zones = _one(data, "VPCZoneIdentifier")
        if zones:
            ctx["autoscaling:VPCZoneIdentifiers"] = [z.strip() for z in zones.split(",") if z.strip()]
    if service == "s3" and arn.startswith("arn:aws:s3:::"):
        bucket = arn[len("arn:aws:s3:::"):].split("/", 1)[0]
        if bucket in s3_backends[req.account_id]["global"].buckets:
            ctx["s3:ResourceAccount"] = req.account_id
    return ctx


KNOWN_KEYS = ("aws:TagKeys", "autoscaling:LaunchTemplateVersionSpecified", "autoscaling:MaxSize",
              "autoscaling:MinSize", "autoscaling:VPCZoneIdentifiers", "s3:ResourceAccount")
KNOWN_PREFIXES = ("aws:ResourceTag/", "aws:RequestTag/")


def _test(op, have, wanted):
    if op in ("StringEquals", "Bool", "ArnEquals"):
        return str(have) in wanted
    if op in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(str(have), w) for w in wanted)
    if op == "NumericLessThanEquals":
        return float(have) <= float(wanted[0])
    raise UnknownConditionKey("condition operator %s is not one this evaluator implements" % op)


def _conditions_hold(cond, ctx, sid):
    for op, pairs in (cond or {}).items():
        for key, wanted in pairs.items():
            if key not in KNOWN_KEYS and not key.startswith(KNOWN_PREFIXES):
                raise UnknownConditionKey("condition key %s (statement %s) is unknown to this evaluator" % (key, sid))
            wanted = [str(w) for w in _as_list(wanted)]
            have = ctx.get(key)
            if op.startswith("ForAllValues:"):
                if not all(_test(op.split(":", 1)[1], h, wanted) for h in _as_list(have or [])):
                    return False
                continue
            if have is None:
                return False
            if not any(_test(op, h, wanted) for h in _as_list(have)):
                return False
    return True


def _decide(policies, action, arn, ctx):
    allowed = False
    for doc in policies:
        statements = doc.get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            if not any(_match(a, action) for a in _as_list(st.get("Action", []))):
                continue
            if not any(_match(r, arn) for r in _as_list(st.get("Resource", "*"))):
                continue
            if not _conditions_hold(st.get("Condition"), ctx, st.get("Sid", "?")):
                continue
            if st.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


def _policy_documents(req):
    docs = []
    for p in req._access_key.collect_policies():
        policy = access_control.IAMPolicy(p)
        docs.append(policy._policy_json)
    return docs


_original = access_control.IAMRequestBase.check_action_permitted


# moto names actions after its handlers where AWS authorizes another action (HeadBucket needs
# s3:ListBucket, per the S3 API reference).
IAM_ACTION_OF = {"s3:HeadBucket": "s3:ListBucket"}


def check_action_permitted(self, resource):
    self._action = IAM_ACTION_OF.get(self._action, self._action)
    service = self._action.split(":", 1)[0]
    if service not in SERVICES:
        return _original(self, resource)
    policies = _policy_documents(self)
    request_tags = _request_tags(self._data)
    for arn, tags in _resources(self, resource):
        if not _decide(policies, self._action, arn, _context(self, tags, request_tags, arn)):
            self._raise_access_denied()


# STS calls AWS takes without a signature (the token is the credential); moto's enforcement
# would demand an Authorization header for them too.
UNSIGNED_ACTIONS = ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")
_original_normal = authorization.ActionAuthenticatorMixin._authenticate_and_authorize_normal_action


def _authenticate_normal_action(self, resource="*"):
    if self._get_action() in UNSIGNED_ACTIONS and "Authorization" not in self.headers:
        return None
    return _original_normal(self, resource)


def install():
    access_control.IAMRequestBase.check_action_permitted = check_action_permitted
    authorization.ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _authenticate_normal_action


__all__ = ["install", "json"]
