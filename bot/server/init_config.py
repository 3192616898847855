"""`signoff init`: a complete, commented signoff.yaml holding every section at its default.

The file loads to exactly the embedded default (a test holds it to that), so a new user
starts from what `signoff serve` already does and changes one thing at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["TEMPLATE", "write_config"]

TEMPLATE = """\
# Signoff configuration. Every section below is at its built-in default: delete what you do
# not change (an omitted section or key takes its default), edit the rest.
# Check it with `signoff policy check signoff.yaml`; run it with
# `signoff serve --config signoff.yaml` (or set SIGNOFF_CONFIG=signoff.yaml).
# The full reference: docs/reference.md.

# SQLite (one process) or PostgreSQL (replicas; needs `pip install 'signoff[postgres]'`),
# e.g. postgresql+psycopg://signoff@db.internal/signoff. Env: SIGNOFF_DATABASE_URL.
database_url: sqlite:///./signoff.db
# Where links on cards point; empty means http://HOST:PORT. Env: SIGNOFF_PUBLIC_URL.
public_url: ""
host: 127.0.0.1          # env: SIGNOFF_HOST
port: 8000               # env: SIGNOFF_PORT

# Agents allowed to call the API. Empty (the default): one agent `demo`, whose key is kept
# beside the database and printed at every start. To add your own, uncomment and fill in
# (`signoff keys new invoice-bot` prints a key and its sha256):
agents:
#  - id: invoice-bot
#    key_sha256: <64 hex characters>
#    callback_url: http://127.0.0.1:9000/resume     # where resume webhooks go
#    webhook_secret_env: INVOICE_BOT_WEBHOOK_SECRET # env var holding a whsec_... secret
#    owner: slack:U0OWNER                           # may never approve this agent's requests

routing:
  autonomous_at: 0.8           # confidence >= this and no rule fired: proceed at once
  review_at: 0.5               # >= this: proceed, a card is queued for after-the-fact review
                               # below: escalate (the agent waits for a verdict)
  review_sample_rate: 1.0      # share of review-lane items actually posted
  autonomous_sample_rate: 0.0  # share of autonomous items posted for review
  rules:                       # CEL; any match escalates. A list given here replaces these.
    - name: high_value_transaction
      when: 'action.kind == "payment" && amount > 500.0'
      risk: high
      title: Large payment       # what reviewers read instead of the name
      explain: 'A payment of {amount} {currency} is over the 500 limit'  # {request variables}
    - name: irreversible_action
      when: '!reversible'
      risk: high
      approvals: 2             # two distinct reviewers must approve
      title: Cannot be undone
      explain: The agent says this action cannot be undone, so two people must agree
    - name: negative_sentiment
      when: 'sentiment < -0.6'
      risk: high
      title: Upset customer
      explain: 'The conversation reads as upset (sentiment {sentiment})'
    - name: regulated_domain
      when: 'domain in ["legal", "medical", "financial"]'
      risk: high
      title: Regulated area
      explain: 'This touches a regulated area ({domain})'
    - name: medium_risk_change
      when: 'action.kind in ["account_change", "refund", "config_change"] && confidence < 0.7'
      risk: medium
      title: Unsure change to an account, refund or setting
      explain: 'The agent is only {confidence} sure about this {action.kind}'
  start_tier: {low: junior, medium: senior, high: manager}
  on_timeout: reject           # past the last tier: reject | expire | approve (not for high),
                               # or by risk, e.g. {low: approve, medium: reject, high: reject}

tiers:                         # the escalation chain, lowest first
  - name: junior
    sla: 15m                   # time at this tier before moving up (s, m, h, d)
    # remind_after: 10m        # a reminder in the same channel
    # slack_channel: C0JUNIOR
    # teams_channel: "19:abc@thread.tacv2"
    reviewers: [web:admin]     # platform:id with platform slack, teams or web
    # notify: channel          # channel | dm (each named Slack/Teams reviewer) | both
  - name: senior
    sla: 1h
    reviewers: [web:admin]
  - name: manager
    sla: 4h
    reviewers: [web:admin]

slack:                         # on when the bot token and the signing secret (or app token) are set
  enabled: null                # null: on when the credentials are set; false: off
  bot_token_env: SLACK_BOT_TOKEN
  signing_secret_env: SLACK_SIGNING_SECRET
  app_token_env: SLACK_APP_TOKEN        # Socket Mode (xapp-...)
  api_url: https://slack.com/api/
  alerts_channel: null                  # a channel id for warning signs, e.g. C0OPS

teams:                         # on when the app id is set, or with enabled: true
  enabled: null                # null: on when the app id is set; false: off whatever is set
  auth: botframework           # botframework (tokens checked) | none (local testing only)
  app_id_env: TEAMS_APP_ID
  app_password_env: TEAMS_APP_PASSWORD
  tenant_id_env: TEAMS_TENANT_ID
  service_url: https://smba.trafficmanager.net/teams/
  alerts_channel: null

web:
  # Web inbox logins. Empty: the built-in `admin` signs in through one-time links
  # (`signoff web login-link`). Hashes come from `signoff web hash-password`.
  reviewers: {}
  #  alice: {password_hash: "scrypt$...", name: Alice Example}
  session_ttl: 12h             # a signed-in session ends after this
  oidc: null                   # sign-in through the organization's identity provider:
  #  {issuer: https://login.example.com, client_id: signoff, client_secret_env: OIDC_SECRET,
  #   scopes: [openid, email, profile], identity_claim: email}

oversight:                     # warning signs (`signoff report`, /metrics, alerts)
  evaluate_every: 1m
  window: 24h
  min_sample: 10               # fewer decisions than this: "too few to judge"
  escalation_rate: {low: 0.05, high: 0.40}   # warn below / above these
  time_to_escalate: 60s
  override_rise: 0.1
  queue_growth: 0.5
  rubber_stamp: {approval_rate: 0.98, median_under: 5s, min_decisions: 20}
  canaries: {enabled: false, rate: 0.02, tiers: null, agent: null}   # attention checks

batch:                         # same-kind items at one tier share one card
  min_items: 0                 # 0: off; else at least 2
  max_items: 20

queue:                         # a burst: one card listing what waits, while own cards follow
  after: 5                     # own cards waiting for one chat channel before it gets one; 0: off
  max_items: 200

# People behind the reviewer identities: rules that count or exclude reviewers (two-person
# approval, the requester and owner blocks, one vote per action) count people, so one person's
# Slack, Teams and web accounts are listed together. An identity not listed is its own person.
people: []
#  - id: ops-lead
#    name: Operations lead
#    identities: [slack:U0DDD, teams:2f1c0000-aad-object-id, web:lead]

prediction:                    # the escalation model (`signoff predict`, docs/learning.md)
  mode: "off"                  # off | shadow (score stored and shown) | active (routes)
  threshold: 0.7               # active: a score above it escalates (predicted_escalation)
  prepare_margin: 0.2          # active: proceeds scoring within this under it: card posted

outbox:                        # deliveries in flight at once, per replica (docs/deliveries.md)
  max_in_flight: 32            # all lanes together
  per_destination: 4           # to one callback origin, Slack channel or Teams conversation
  lanes: {webhooks: 16, cards: 12, alerts: 2}

audit:                         # signed checkpoints of the audit chain (docs/audit.md)
  checkpoints: null            # file:///DIR or s3://BUCKET/PREFIX; needs SIGNOFF_AUDIT_SIGNING_KEY
  checkpoint_every: 1m

display:                       # how reviewer views write money, numbers and times
  locale: en_US                # a CLDR locale (Babel): en_GB, de_DE, fr_FR, ...
  timezone: UTC                # web inbox and reports; Slack and Teams show the reader's own
"""


def write_config(path: Path) -> None:
    """Write the template to `path`. Raises FileExistsError rather than overwrite a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(TEMPLATE)
