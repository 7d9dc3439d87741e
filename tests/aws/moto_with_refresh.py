#!/usr/bin/env python3
"""moto's AWS server plus the two Auto Scaling calls it lacks: StartInstanceRefresh and
DescribeInstanceRefreshes (our own test extension, loaded into the real moto server), and a fix for
moto 5.x keeping CreateLaunchTemplateVersion's UserData undecoded (so launching from such a
version fails an assertion inside moto).

A refresh replaces every instance of the group with one launched from the group's current launch
template version (moto keeps the version an instance was launched with) and is reported as
Successful. Usage: moto_with_refresh.py -H 127.0.0.1 -p PORT   (same flags as `moto.server`).
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


def _group(self, name):
    return self.autoscaling_backend.autoscaling_groups.get(name)


def start_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    group = _group(self, name)
    if group is None:
        raise ValidationError("AutoScalingGroup name not found - %s" % name)
    key = (self.current_account, self.region, name)
    if any(r["Status"] in ("Pending", "InProgress") for r in REFRESHES.get(key, [])):
        raise AutoscalingClientError("InstanceRefreshInProgress",
                                     "An Instance Refresh is already in progress for %s" % name)
    desired = group.desired_capacity or 0
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Replace every instance: scale to zero, then back to the desired capacity, so new
    # instances come from the group's current launch template version.
    group.set_desired_capacity(0)
    group.set_desired_capacity(desired)
    refresh = {"InstanceRefreshId": str(uuid.uuid4()), "AutoScalingGroupName": name,
               "Status": "Successful", "PercentageComplete": 100, "InstancesToUpdate": 0,
               "StartTime": now, "EndTime": now}
    REFRESHES.setdefault(key, []).insert(0, refresh)
    return ("<StartInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">"
            "<StartInstanceRefreshResult><InstanceRefreshId>%s</InstanceRefreshId>"
            "</StartInstanceRefreshResult><ResponseMetadata><RequestId>%s</RequestId>"
            "</ResponseMetadata></StartInstanceRefreshResponse>" % (refresh["InstanceRefreshId"], uuid.uuid4()))


def describe_instance_refreshes(self):
    name = self._get_param("AutoScalingGroupName")
    items = "".join(
        "<member><InstanceRefreshId>%(InstanceRefreshId)s</InstanceRefreshId>"
        "<AutoScalingGroupName>%(AutoScalingGroupName)s</AutoScalingGroupName>"
        "<Status>%(Status)s</Status><PercentageComplete>%(PercentageComplete)d</PercentageComplete>"
        "<InstancesToUpdate>%(InstancesToUpdate)d</InstancesToUpdate>"
        "<StartTime>%(StartTime)s</StartTime><EndTime>%(EndTime)s</EndTime></member>" % r
        for r in REFRESHES.get((self.current_account, self.region, name), []))
    return ("<DescribeInstanceRefreshesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">"
            "<DescribeInstanceRefreshesResult><InstanceRefreshes>%s</InstanceRefreshes>"
            "</DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>%s</RequestId>"
            "</ResponseMetadata></DescribeInstanceRefreshesResponse>" % (items, uuid.uuid4()))


_original_user_data = launch_templates.LaunchTemplateVersion.user_data


def _decoded_user_data(self):
    value = self.data.get("UserData")
    if value is not None and not isinstance(value, Base64EncodedString):
        self.data["UserData"] = parse_user_data(value)
    return _original_user_data.fget(self)


launch_templates.LaunchTemplateVersion.user_data = property(_decoded_user_data)
AutoScalingResponse.start_instance_refresh = start_instance_refresh
AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes

if os.environ.get("KILN_MOTO_RESOURCE_POLICIES") == "1":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import moto_scoped_iam  # noqa: E402

    moto_scoped_iam.install()

if __name__ == "__main__":
    moto_main(sys.argv[1:])
