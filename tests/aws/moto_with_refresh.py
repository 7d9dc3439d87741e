#!/usr/bin/env python3
"""moto's AWS server plus the Auto Scaling calls it lacks: StartInstanceRefresh,
DescribeInstanceRefreshes and RollbackInstanceRefresh (our own test extension, loaded into the real
moto server), and a fix for moto 5.x keeping CreateLaunchTemplateVersion's UserData undecoded (so
launching from such a version fails an assertion inside moto).

A refresh replaces every instance of the group with one launched from the group's launch template
version, or from DesiredConfiguration's version, which the group then keeps (as AWS does); the
target groups attached to the group follow. Its Preferences are recorded and returned by
DescribeInstanceRefreshes, as AWS returns them, so tests can assert what was asked. It is reported
as Successful, unless the test tagged the group kiln-test:next-refresh (CreateOrUpdateTags; the
refresh removes the tag): "rollback" makes the next refresh fail its health checks and, when
it asked for AutoRollback, end RollbackSuccessful on the group's previous version (Failed without
AutoRollback); "no-rollback" ends it Failed even with AutoRollback (a region without
auto-rollback); "hold" leaves it InProgress (then RollbackInstanceRefresh returns the group to its
previous version, RollbackSuccessful). Usage: moto_with_refresh.py -H 127.0.0.1 -p PORT   (same flags
as `moto.server`).
"""
import os
import sys
import uuid
from datetime import datetime, timezone

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.types import Base64EncodedString
from moto.ec2.models import launch_templates
from moto.ec2.utils import parse_user_data
from moto.server import main as moto_main

# (account, region, group name) -> refreshes, newest first
REFRESHES = {}
# The group tag a test sets to say what the next refresh does: "rollback", "no-rollback", "hold"
TEST_TAG = "kiln-test:next-refresh"
NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
PREFERENCES = ("MinHealthyPercentage", "MaxHealthyPercentage", "InstanceWarmup", "SkipMatching",
               "AutoRollback")


def _group(self, name):
    return self.autoscaling_backend.autoscaling_groups.get(name)


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _replace_instances(self, group):
    """Every instance of the group replaced by one from its current launch template version; its
    target groups follow."""
    backend = self.autoscaling_backend
    old = [st.instance.id for st in group.instance_states]
    desired = group.desired_capacity or 0
    group.set_desired_capacity(0)
    group.set_desired_capacity(desired)
    if group.target_group_arns:
        for arn in group.target_group_arns:
            try:
                backend.elbv2_backend.deregister_targets(arn, [{"Id": i} for i in old])
            except Exception:  # noqa: BLE001 - a target group deleted meanwhile
                pass
        backend.update_attached_target_groups(group.name)


def _set_version(group, version):
    group.launch_template_version = version
    group.provided_launch_template_version = version


def start_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    group = _group(self, name)
    if group is None:
        raise ValidationError("AutoScalingGroup name not found - %s" % name)
    key = (self.current_account, self.region, name)
    if any(r["Status"] in ("Pending", "InProgress") for r in REFRESHES.get(key, [])):
        raise AutoscalingClientError("InstanceRefreshInProgress",
                                     "An Instance Refresh is already in progress for %s" % name)
    prefs = {k: self._get_param("Preferences.%s" % k) for k in PREFERENCES}
    desired_version = self._get_param("DesiredConfiguration.LaunchTemplate.Version")
    previous = group.launch_template_version
    refresh = {"InstanceRefreshId": str(uuid.uuid4()), "AutoScalingGroupName": name,
               "Status": "Successful", "StatusReason": "", "PercentageComplete": 100,
               "InstancesToUpdate": 0, "StartTime": _now(), "EndTime": _now(),
               "Preferences": prefs, "PreviousVersion": previous}
    if desired_version:
        _set_version(group, desired_version)
    _replace_instances(self, group)
    mode = _next_refresh_mode(group)
    auto = str(prefs.get("AutoRollback")).lower() == "true"
    if mode == "hold":
        refresh.update(Status="InProgress", PercentageComplete=50, EndTime="")
    elif mode == "rollback" and auto:
        _set_version(group, previous)
        _replace_instances(self, group)
        refresh.update(Status="RollbackSuccessful", PercentageComplete=0,
                       StatusReason="new instances failed their ELB health checks; rolled back")
    elif mode in ("rollback", "no-rollback"):
        refresh.update(Status="Failed", PercentageComplete=50,
                       StatusReason="new instances failed their ELB health checks")
    REFRESHES.setdefault(key, []).insert(0, refresh)
    return ("<StartInstanceRefreshResponse xmlns=\"%s\">"
            "<StartInstanceRefreshResult><InstanceRefreshId>%s</InstanceRefreshId>"
            "</StartInstanceRefreshResult><ResponseMetadata><RequestId>%s</RequestId>"
            "</ResponseMetadata></StartInstanceRefreshResponse>" % (NS, refresh["InstanceRefreshId"], uuid.uuid4()))


def rollback_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    group = _group(self, name)
    running = [r for r in REFRESHES.get((self.current_account, self.region, name), [])
               if r["Status"] in ("Pending", "InProgress")]
    if group is None or not running:
        raise AutoscalingClientError("ActiveInstanceRefreshNotFound",
                                     "No in progress or pending Instance Refresh found for %s" % name)
    refresh = running[0]
    _set_version(group, refresh["PreviousVersion"])
    _replace_instances(self, group)
    refresh.update(Status="RollbackSuccessful", PercentageComplete=0, EndTime=_now(),
                   StatusReason="rolled back on request")
    return ("<RollbackInstanceRefreshResponse xmlns=\"%s\"><RollbackInstanceRefreshResult>"
            "<InstanceRefreshId>%s</InstanceRefreshId></RollbackInstanceRefreshResult>"
            "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
            "</RollbackInstanceRefreshResponse>" % (NS, refresh["InstanceRefreshId"], uuid.uuid4()))


def _next_refresh_mode(group):
    """The test's tag kiln-test:next-refresh on the group (consumed by this refresh)."""
    for tag in list(group.tags):
        if tag.get("Key") == TEST_TAG:
            group.tags.remove(tag)
            return tag.get("Value")
    return None


def _refresh_xml(r):
    prefs = "".join("<%s>%s</%s>" % (k, str(v).lower() if isinstance(v, bool) else v, k)
                    for k, v in r["Preferences"].items() if v is not None)
    return ("<member><InstanceRefreshId>%(InstanceRefreshId)s</InstanceRefreshId>"
            "<AutoScalingGroupName>%(AutoScalingGroupName)s</AutoScalingGroupName>"
            "<Status>%(Status)s</Status><StatusReason>%(StatusReason)s</StatusReason>"
            "<PercentageComplete>%(PercentageComplete)d</PercentageComplete>"
            "<InstancesToUpdate>%(InstancesToUpdate)d</InstancesToUpdate>"
            "<StartTime>%(StartTime)s</StartTime><EndTime>%(EndTime)s</EndTime>" % r
            + "<Preferences>%s</Preferences></member>" % prefs)


def describe_instance_refreshes(self):
    name = self._get_param("AutoScalingGroupName")
    ids = [x for k, vals in self.querystring.items() if k.startswith("InstanceRefreshIds.member.")
           for x in vals]
    items = "".join(_refresh_xml(r) for r in REFRESHES.get((self.current_account, self.region, name), [])
                    if not ids or r["InstanceRefreshId"] in ids)
    return ("<DescribeInstanceRefreshesResponse xmlns=\"%s\">"
            "<DescribeInstanceRefreshesResult><InstanceRefreshes>%s</InstanceRefreshes>"
            "</DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>%s</RequestId>"
            "</ResponseMetadata></DescribeInstanceRefreshesResponse>" % (NS, items, uuid.uuid4()))


_original_user_data = launch_templates.LaunchTemplateVersion.user_data


def _decoded_user_data(self):
    value = self.data.get("UserData")
    if value is not None and not isinstance(value, Base64EncodedString):
        self.data["UserData"] = parse_user_data(value)
    return _original_user_data.fget(self)


launch_templates.LaunchTemplateVersion.user_data = property(_decoded_user_data)
AutoScalingResponse.start_instance_refresh = start_instance_refresh
AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh

if os.environ.get("KILN_MOTO_RESOURCE_POLICIES") == "1":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import moto_scoped_iam  # noqa: E402

    moto_scoped_iam.install()

if __name__ == "__main__":
    moto_main(sys.argv[1:])
