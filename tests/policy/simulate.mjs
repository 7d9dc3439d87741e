// The allow/deny table through an independent IAM evaluator: @cloud-copilot/iam-simulate (a
// test-time tool installed by tests/deps/policy.sh, never shipped). Reads a JSON document
// {policies: {deploy, instance, bucket}, account, principals, cases: [{case, principal, expect,
// requests: [{action, resource, ctx}]}]} (made by test_policy.py from calls.json and the policies
// kiln rendered), prints one line per case (case, decision, decisive statements) and exits 1 when a
// decision differs from the expected one, a request names a context key the AWS Service
// Authorization Reference does not list for its action and resource, or a policy conditions on a
// key none of its statement's actions has (an unknown key fails loudly, never decides silently).
import fs from 'node:fs'
import { runSimulation, allowedContextKeysForRequest } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const problems = []

// Keys the reference lists per action and resource ("aws:ResourceTag/${TagKey}" patterns
// included), lower-cased as iam-data keeps them; global aws:* keys hold for every request.
const GLOBAL = new Set(['aws:securetransport', 'aws:sourceip', 'aws:currenttime', 'aws:requestedregion',
  'aws:principalarn', 'aws:principalaccount', 'aws:userid', 'aws:username', 'aws:calledvia'])
async function allowedKeys(action, resource) {
  const [service, name] = action.split(':')
  try {
    return await allowedContextKeysForRequest(service, name, resource, false, undefined)
  } catch (e) {
    problems.push(`${action} on ${resource}: the evaluator's reference data does not know it (${e.message})`)
    return []
  }
}
function keyAllowed(key, allowed) {
  const k = key.toLowerCase()
  if (GLOBAL.has(k)) return true
  return allowed.some((a) => a === k || (a.endsWith('/${tagkey}') && k.startsWith(a.slice(0, -'${tagkey}'.length))))
}

async function checkPolicyKeys(name, policy) {
  for (const st of policy.Statement) {
    const actions = [].concat(st.Action)
    const resources = [].concat(st.Resource ?? '*')
    for (const [, pairs] of Object.entries(st.Condition ?? {})) {
      for (const key of Object.keys(pairs)) {
        for (const action of actions) {
          let ok = false
          for (const r of resources) ok ||= keyAllowed(key, await allowedKeys(action, r))
          if (!ok) problems.push(`policy ${name}, statement ${st.Sid}: condition key ${key} is not one ${action} has (AWS Service Authorization Reference)`)
        }
      }
    }
  }
}

function sidsOf(list) {
  return (list ?? []).map((s) => s.statement?.Sid ?? s.explain?.identifier ?? '?')
}

async function decide(principal, req) {
  const policy = input.policies[principal]
  const s3 = req.action.startsWith('s3:') && req.resource.startsWith('arn:aws:s3:::')
  const account = req.ctx?.['s3:ResourceAccount'] ?? input.account
  const sim = {
    identityPolicies: [{ name: principal, policy }],
    serviceControlPolicies: [], resourceControlPolicies: [],
    request: {
      action: req.action, principal: input.principals[principal],
      resource: { resource: req.resource, accountId: account },
      contextVariables: req.ctx ?? {}
    }
  }
  if (s3 && input.policies.bucket && account === input.account &&
      req.resource.split(':::')[1].split('/')[0] === input.bucket)
    sim.resourcePolicy = input.policies.bucket
  const allowed = await allowedKeys(req.action, req.resource)
  for (const key of Object.keys(req.ctx ?? {}))
    if (!keyAllowed(key, allowed))
      problems.push(`${req.action} on ${req.resource}: context key ${key} is not one AWS sends for it (AWS Service Authorization Reference)`)
  const r = await runSimulation(sim, {})
  if (r.resultType === 'error') {
    problems.push(`${req.action} on ${req.resource}: the simulator refused the request: ${JSON.stringify(r.errors)}`)
    return { result: 'Error', sids: [] }
  }
  const analysis = r.resultType === 'single' ? r.result.analysis : r.results[0]?.analysis
  const id = analysis?.identityAnalysis
  const res = analysis?.resourceAnalysis
  const deny = [...sidsOf(id?.denyStatements), ...sidsOf(res?.denyStatements).map((s) => 'bucket:' + s)]
  const allow = sidsOf(id?.allowStatements)
  return { result: r.overallResult, sids: r.overallResult === 'Allowed' ? allow : deny }
}

for (const [name, policy] of Object.entries(input.policies)) if (name !== 'bucket') await checkPolicyKeys(name, policy)

const rows = []
let wrong = 0
for (const c of input.cases) {
  let decision = 'allow'
  const sids = []
  for (const req of c.requests) {
    const d = await decide(c.principal, req)
    if (d.result !== 'Allowed') {
      decision = 'deny'
      sids.push(`${req.action}: ${d.sids.length ? 'explicit deny ' + d.sids.join('+') : 'no statement allows it'}`)
      break
    }
    sids.push(d.sids.join('+'))
  }
  const ok = decision === c.expect
  if (!ok) wrong++
  rows.push([ok ? 'ok' : 'WRONG', c.principal, decision, c.case, [...new Set(sids)].join(', ')])
}
const width = Math.max(...rows.map((r) => r[3].length))
console.log(`${'result'.padEnd(6)} ${'principal'.padEnd(9)} ${'decision'.padEnd(8)} ${'case'.padEnd(width)} decisive statement`)
for (const r of rows) console.log(`${r[0].padEnd(6)} ${r[1].padEnd(9)} ${r[2].padEnd(8)} ${r[3].padEnd(width)} ${r[4]}`)
for (const p of problems) console.log('PROBLEM: ' + p)
console.log(`${rows.length} cases, ${wrong} decided otherwise than expected, ${problems.length} problems`)
process.exit(wrong || problems.length ? 1 : 0)
