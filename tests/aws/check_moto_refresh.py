#!/usr/bin/env python3
"""Checks the moto refresh extension through plain Query-protocol HTTP calls (moto does not check
signatures unless IAM enforcement is on): a refresh replaces the group's instances with ones from
the newest launch template version (or DesiredConfiguration's), returns its preferences, and fails,
rolls back or stays in progress as the group's kiln-test:next-refresh tag says. Usage: check_moto_refresh.py SERVER_ENV_FILE"""
import re
import sys
import urllib.parse
import urllib.request

env = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)
url = env["URL"] + "/"
HEADERS = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/%s/aws4_request, "
                            "SignedHeaders=host, Signature=0",
           "Content-Type": "application/x-www-form-urlencoded"}


def call(service, version, action, **params):
    params.update(Action=action, Version=version)
    req = urllib.request.Request(url, urllib.parse.urlencode(params).encode(),
                                 dict(HEADERS, Authorization=HEADERS["Authorization"] % service))
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ec2(action, **p):
    return call("ec2", "2016-11-15", action, **p)


def asg(action, **p):
    return call("autoscaling", "2011-01-01", action, **p)


fails = []
status, body = ec2("CreateLaunchTemplate", LaunchTemplateName="lt-test",
                   **{"LaunchTemplateData.ImageId": "ami-12c6146b", "LaunchTemplateData.InstanceType": "m5.xlarge",
                      "LaunchTemplateData.EnclaveOptions.Enabled": "true"})
lt = re.search(r"<launchTemplateId>([^<]+)", body).group(1)
asg("CreateAutoScalingGroup", AutoScalingGroupName="g", MinSize="1", MaxSize="2", DesiredCapacity="2",
    AvailabilityZones__member__1="us-east-1a",
    **{"LaunchTemplate.LaunchTemplateId": lt, "LaunchTemplate.Version": "$Latest",
       "AvailabilityZones.member.1": "us-east-1a"})
_, before = asg("DescribeAutoScalingGroups", **{"AutoScalingGroupNames.member.1": "g"})
old = set(re.findall(r"<InstanceId>([^<]+)", before))
ec2("CreateLaunchTemplateVersion", LaunchTemplateId=lt,
    **{"LaunchTemplateData.ImageId": "ami-12c6146b", "LaunchTemplateData.InstanceType": "m5.2xlarge"})
status, body = asg("StartInstanceRefresh", AutoScalingGroupName="g")
if status != 200 or "<InstanceRefreshId>" not in body:
    fails.append("StartInstanceRefresh: %s %s" % (status, body))
_, after = asg("DescribeAutoScalingGroups", **{"AutoScalingGroupNames.member.1": "g"})
new = set(re.findall(r"<InstanceId>([^<]+)", after))
if len(old) != 2 or len(new) != 2 or old & new:
    fails.append("instances were not replaced: before %s after %s" % (old, new))
_, body = asg("DescribeInstanceRefreshes", AutoScalingGroupName="g")
if "<Status>Successful</Status>" not in body:
    fails.append("DescribeInstanceRefreshes: %s" % body)
status, body = asg("StartInstanceRefresh", AutoScalingGroupName="nope")
if status != 400 or "ValidationError" not in body:
    fails.append("unknown group should be a ValidationError: %s %s" % (status, body))


def group_version():
    _, body = asg("DescribeAutoScalingGroups", **{"AutoScalingGroupNames.member.1": "g"})
    return re.search(r"<LaunchTemplate>.*?<Version>([^<]+)</Version>", body, re.S).group(1)


def next_refresh(mode):
    asg("CreateOrUpdateTags", **{"Tags.member.1.ResourceId": "g", "Tags.member.1.ResourceType": "auto-scaling-group",
                                 "Tags.member.1.Key": "kiln-test:next-refresh", "Tags.member.1.Value": mode,
                                 "Tags.member.1.PropagateAtLaunch": "false"})


def refresh(version, auto):
    _, body = asg("StartInstanceRefresh", AutoScalingGroupName="g",
                  **{"DesiredConfiguration.LaunchTemplate.LaunchTemplateId": lt,
                     "DesiredConfiguration.LaunchTemplate.Version": version,
                     "Preferences.MinHealthyPercentage": "100", "Preferences.InstanceWarmup": "60",
                     "Preferences.AutoRollback": auto})
    rid = re.search(r"<InstanceRefreshId>([^<]+)", body).group(1)
    _, body = asg("DescribeInstanceRefreshes", AutoScalingGroupName="g", **{"InstanceRefreshIds.member.1": rid})
    return body


# DesiredConfiguration: the group moves to that version; the preferences come back as asked
asg("UpdateAutoScalingGroup", AutoScalingGroupName="g",
    **{"LaunchTemplate.LaunchTemplateId": lt, "LaunchTemplate.Version": "1"})
body = refresh("2", "true")
if group_version() != "2" or "<MinHealthyPercentage>100</MinHealthyPercentage>" not in body or \
        "<AutoRollback>true</AutoRollback>" not in body:
    fails.append("DesiredConfiguration/Preferences: version %s, %s" % (group_version(), body))
# a refresh failing its health checks: auto-rollback returns to the previous version
next_refresh("rollback")
body = refresh("1", "true")
if "<Status>RollbackSuccessful</Status>" not in body or group_version() != "2":
    fails.append("rollback mode: version %s, %s" % (group_version(), body))
next_refresh("rollback")
body = refresh("1", "false")
if "<Status>Failed</Status>" not in body:
    fails.append("rollback mode without AutoRollback should fail: %s" % body)
# a refresh held in progress, rolled back on request
asg("UpdateAutoScalingGroup", AutoScalingGroupName="g",
    **{"LaunchTemplate.LaunchTemplateId": lt, "LaunchTemplate.Version": "2"})
next_refresh("hold")
body = refresh("1", "true")
status, rb = asg("RollbackInstanceRefresh", AutoScalingGroupName="g")
_, after = asg("DescribeInstanceRefreshes", AutoScalingGroupName="g")
if "<Status>InProgress</Status>" not in body or status != 200 or group_version() != "2" or \
        "<Status>RollbackSuccessful</Status>" not in after.split("</member>")[0]:
    fails.append("hold + RollbackInstanceRefresh: %s / %s %s / version %s" % (body, status, rb, group_version()))
status, body = asg("RollbackInstanceRefresh", AutoScalingGroupName="g")
if status != 400 or "ActiveInstanceRefreshNotFound" not in body:
    fails.append("RollbackInstanceRefresh without a running refresh: %s %s" % (status, body))
for f in fails:
    print("FAIL:", f)
print("moto refresh extension: %d failure(s)" % len(fails))
sys.exit(1 if fails else 0)
