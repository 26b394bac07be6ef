//! A JSON Schema of the catalog format (TOML maps onto JSON one to one),
//! for editor completion and validation (`haven catalog schema`).
//!
//! A test keeps it in step with the loader: for every table, the schema's
//! properties are exactly the keys the loader knows.

use serde_json::{Value, json};

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn duration(description: &str) -> Value {
    json!({
        "type": "string",
        "description": format!("{description} (e.g. 15m, 4h, 2d, 1w, 1h 30m)"),
        "pattern": "^\\s*[0-9]+\\s*[a-z]+(\\s*[0-9]+\\s*[a-z]+)*\\s*$"
    })
}

fn date(description: &str) -> Value {
    json!({ "type": "string", "format": "date", "description": description })
}

fn id(description: &str) -> Value {
    json!({ "type": "string", "pattern": "^[a-z0-9._-]+$", "description": description })
}

fn ids(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

fn count(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "description": description })
}

fn rating(description: &str) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": 5, "description": description })
}

fn one_of(values: &[&str], description: &str) -> Value {
    json!({ "type": "string", "enum": values, "description": description })
}

/// A command's environment: names to values or secret references.
fn env(description: &str) -> Value {
    json!({
        "type": "object",
        "description": format!("{description}: NAME = \"env:VAR\", \"file:PATH\" or a plain (non-secret) value"),
        "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        "additionalProperties": { "type": "string" }
    })
}

fn table(required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties
    })
}

fn array_of(item: Value, description: &str) -> Value {
    json!({ "type": "array", "items": item, "description": description })
}

/// The catalog format as a JSON Schema (draft 2020-12).
pub fn schema() -> Value {
    let impact = table(
        &[],
        json!({
            "per_hour": { "type": "number", "minimum": 0, "description": "financial impact of an hour of downtime" },
            "currency": string("currency of per_hour (ISO 4217)"),
            "legal": rating("legal/regulatory impact"),
            "reputational": rating("reputational impact"),
            "customer": rating("customer impact"),
            "operational": rating("operational impact"),
            "tolerable_loss": { "type": "number", "minimum": 0, "description": "the most one outage may cost (same currency): where the impact curve becomes intolerable" }
        }),
    );
    let recovery_step = table(
        &["type"],
        json!({
            "type": one_of(&["command", "sql", "http", "tcp", "wait", "checkpoint"], "what the step does"),
            "name": string("its name in the run (default: from its action)"),
            "critical": { "type": "boolean", "description": "a failed critical step halts the run until it is retried or skipped (default true)" },
            "timeout": duration("how long it may take"),
            "run": string("command: the command line"),
            "expect_exit": { "type": "integer", "description": "command: expected exit code (default 0)" },
            "expect_output": string("command: text the output must contain"),
            "env": env("command, sql: environment (the connection for sql: PGHOST, PGUSER, …)"),
            "query": string("sql: the query (run with psql)"),
            "expect": string("sql: expected first value"),
            "url": string("http: the URL"),
            "expect_status": { "type": "integer", "description": "http: expected status (default 200)" },
            "address": string("tcp: host:port"),
            "duration": duration("wait: how long"),
            "prompt": string("checkpoint: what a person checks and confirms")
        }),
    );
    let service = table(
        &["id", "tier"],
        json!({
            "id": id("unique among services, systems and vendors"),
            "name": string("display name"),
            "description": string("what the service is for"),
            "owner": string("owning [[team]] id"),
            "tier": { "type": "integer", "minimum": 1, "maximum": 4, "description": "1 is the most critical" },
            "business_functions": ids("business functions it supports"),
            "impact": impact,
            "mtd": duration("maximum tolerable downtime"),
            "rto": duration("recovery time objective"),
            "rpo": duration("recovery point objective"),
            "data_classification": one_of(&["public", "internal", "confidential", "regulated"], "classification of its data"),
            "regulations": ids("[[regulation]] ids that apply"),
            "strategy": one_of(&["active-active", "active-passive", "warm-standby", "cold-standby", "backup-restore"], "continuity strategy"),
            "recovery_site": string("where it is recovered"),
            "depends_on": ids("services, systems and vendors it needs"),
            "review_interval": duration("how often the entry is reviewed"),
            "restore_estimate": duration("how long bringing the service itself back takes once what it depends on is back"),
            "impact_over_time": {
                "type": "object",
                "description": "the loss accumulated after each downtime, e.g. { \"1h\" = 1000, \"8h\" = 50000, \"3d\" = 900000 }",
                "additionalProperties": { "type": "number", "minimum": 0 }
            },
            "last_reviewed": date("last review"),
            "recovery": array_of(recovery_step, "steps of its recovery after its data is restored, in order")
        }),
    );
    let backup_set = table(
        &[],
        json!({
            "name": string("name within the system"),
            "paths": ids("paths to back up"),
            "excludes": ids("glob patterns to leave out"),
            "command": string("a dump command whose output is backed up (e.g. pg_dump -Fc erp)"),
            "env": env("environment of the dump command"),
            "restore_command": string("drills: loads the restored dump into the sandbox ($HAVEN_SANDBOX, $HAVEN_RESTORE_FILE, $HAVEN_PORT)"),
            "start": string("drills: starts the restored service in the sandbox, listening on 127.0.0.1:$HAVEN_PORT"),
            "recover_command": string("recovery: the command the restored dump is piped into (e.g. pg_restore --clean --if-exists -d orders); never used by drills")
        }),
    );
    let check = table(
        &["type"],
        json!({
            "type": one_of(&["command", "sql", "http", "tcp"], "kind of check"),
            "run": string("command: the command line"),
            "expect_exit": { "type": "integer", "description": "command: expected exit code (default 0)" },
            "expect_output": string("command: text the output must contain"),
            "query": string("sql: the query"),
            "expect": string("sql: expected first value"),
            "url": string("http: the URL"),
            "expect_status": { "type": "integer", "description": "http: expected status (default 200)" },
            "address": string("tcp: host:port")
        }),
    );
    let system = table(
        &["id", "kind"],
        json!({
            "id": id("unique among services, systems and vendors"),
            "host": string("host name or address"),
            "kind": string("file-server, database-postgres, database-mysql, vm, saas, network, identity, dns, mail, …"),
            "owner": string("owning [[team]] id"),
            "policy": string("[[policy]] id"),
            "restore_estimate": duration("how long restoring the system takes once what it needs is back"),
            "recovery_point_query": string("a query whose answer is the newest time in the restored data (drills measure the achieved RPO with it)"),
            "backup_set": array_of(backup_set, "what to back up"),
            "check": array_of(check, "verification checks drills run after restoring"),
            "alternatives": ids("systems that can take over")
        }),
    );
    let retention = table(
        &[],
        json!({
            "keep_last": count("keep the N newest snapshots"),
            "keep_hourly": count("newest per hour, for N hours"),
            "keep_daily": count("newest per day, for N days"),
            "keep_weekly": count("newest per week, for N weeks"),
            "keep_monthly": count("newest per month, for N months"),
            "keep_yearly": count("newest per year, for N years"),
            "min_days": count("nothing removed before this age in days")
        }),
    );
    let integrity = table(
        &["schedule"],
        json!({
            "schedule": string("cron schedule of integrity checks"),
            "read_data_percent": { "type": "number", "minimum": 0, "maximum": 100, "description": "share of data read each time" }
        }),
    );
    let policy = table(
        &["id", "schedule", "repository"],
        json!({
            "id": id("unique among policies"),
            "schedule": string("cron: minute hour day-of-month month day-of-week"),
            "timezone": string("IANA time zone (default UTC)"),
            "window": { "type": "string", "pattern": "^\\s*[0-9]{1,2}:[0-9]{2}\\s*-\\s*[0-9]{1,2}:[0-9]{2}\\s*$", "description": "local start-end, e.g. 22:00-06:00" },
            "stagger": duration("random spread of starts"),
            "expected_duration": duration("typical backup duration"),
            "max_duration": duration("longest acceptable backup duration"),
            "retention": retention,
            "repository": string("primary [[repository]] id"),
            "copies": ids("repositories receiving copies"),
            "immutability_days": count("days each snapshot is locked"),
            "integrity_check": integrity,
            "pre_hook": string("command run before each backup"),
            "post_hook": string("command run after each backup"),
            "env": env("environment of the hooks"),
            "priority": { "type": "integer", "description": "higher starts first" }
        }),
    );
    let repository = table(
        &["id", "url"],
        json!({
            "id": id("unique among repositories"),
            "url": string("a path or s3:http(s)://host:port/bucket/prefix"),
            "jurisdiction": string("legal jurisdiction of the storage (DE, EU, US, …)"),
            "region": string("site or region"),
            "storage_tier": one_of(&["hot", "cold", "archive"], "storage tier"),
            "media": string("disk, object, tape, …"),
            "capacity_bytes": count("capacity in bytes"),
            "password": { "type": "string", "pattern": "^(env|file):.+$", "description": "env:VAR or file:PATH, never the secret itself" }
        }),
    );
    let member = table(
        &["name"],
        json!({
            "name": string("full name"),
            "email": string("e-mail address"),
            "phone": string("phone number"),
            "chat": string("chat handle")
        }),
    );
    let team = table(
        &["id"],
        json!({
            "id": id("unique among teams"),
            "name": string("display name"),
            "member": array_of(member, "members")
        }),
    );
    let vendor = table(
        &["id"],
        json!({
            "id": id("unique among services, systems and vendors"),
            "name": string("display name"),
            "sla_response": duration("committed response time"),
            "sla_rto": duration("committed recovery time"),
            "contract_end": date("end of the contract"),
            "last_evidence": date("last continuity evidence received"),
            "alternatives": ids("vendors or systems that can take over")
        }),
    );
    let regulation = table(
        &["id"],
        json!({
            "id": id("unique among regulations"),
            "name": string("display name"),
            "min_retention_days": count("backups kept at least this long"),
            "max_retention_days": count("personal data kept at most this long"),
            "min_immutability_days": count("snapshots immutable at least this long"),
            "allowed_jurisdictions": ids("where the data may be stored (empty: anywhere)")
        }),
    );
    let secret = |d: &str| json!({ "type": "string", "pattern": "^(env|file):.+$", "description": format!("{d} (by reference: env:VAR or file:PATH)") });
    let channel = table(
        &["id", "type"],
        json!({
            "id": id("unique among channels"),
            "type": one_of(&["email", "webhook", "slack", "teams", "command"], "how it delivers"),
            "smtp": string("email: host:port of the mail server"),
            "security": one_of(&["starttls", "tls", "none"], "email: transport security (default starttls)"),
            "username": string("email: login name"),
            "password": secret("email: the login's password"),
            "from": string("email: sender address"),
            "to": ids("email: recipients"),
            "ca_file": string("email: PEM file of extra CA certificates to trust"),
            "url": string("webhook, slack, teams: where to POST (may be env:VAR or file:PATH)"),
            "secret": secret("webhook: HMAC-SHA256 signing key"),
            "run": string("command: the command line (message on stdin and in HAVEN_* variables)"),
            "env": env("command: its environment"),
            "retries": count("retries before failing over (default 2)"),
            "retry_delay": duration("delay before the first retry, doubling (default 30s)"),
            "timeout": duration("longest time of one attempt (default 30s)"),
            "subject": string("minijinja template of the subject"),
            "body": string("minijinja template of the body")
        }),
    );
    let calendar = table(
        &["id", "hours"],
        json!({
            "id": id("unique among calendars"),
            "timezone": string("IANA time zone (default UTC)"),
            "days": { "type": "array", "items": { "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] }, "description": "working days (default mon-fri)" },
            "hours": string("working hours, local time (\"08:00-18:00\")"),
            "holidays": { "type": "array", "items": { "type": "string", "format": "date" }, "description": "days off" }
        }),
    );
    let step = table(
        &["channels"],
        json!({
            "channels": ids("channels in failover order"),
            "wait": duration("time after a notification before the next (default 15m)"),
            "repeat": count("how many more times the step repeats before the next step")
        }),
    );
    let escalation = table(
        &["id"],
        json!({
            "id": id("unique among escalation policies"),
            "severities": { "type": "array", "items": { "enum": ["info", "warning", "major", "critical"] }, "description": "severities it applies to (empty: all)" },
            "tiers": { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 4 }, "description": "service tiers it applies to (empty: all)" },
            "hours": one_of(&["any", "business", "off-hours"], "time of day it applies to"),
            "calendar": string("business-hours calendar id"),
            "step": array_of(step, "the steps, in order")
        }),
    );
    let maintenance = table(
        &["id"],
        json!({
            "id": id("unique among maintenance windows"),
            "reason": string("why"),
            "services": ids("services covered (and their systems)"),
            "systems": ids("systems covered"),
            "repositories": ids("repositories covered"),
            "start": string("one-off: start (\"2026-12-05 22:00\" in timezone, or RFC 3339)"),
            "end": string("one-off: end"),
            "schedule": string("recurring: cron expression (local time)"),
            "duration": duration("recurring: length of each occurrence"),
            "timezone": string("IANA time zone (default UTC)")
        }),
    );
    let drill = table(
        &["id", "schedule"],
        json!({
            "id": id("unique among drill schedules"),
            "services": ids("services covered, by id (their systems are drilled)"),
            "tiers": { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 4 }, "description": "service tiers covered (without services or tiers: every service)" },
            "schedule": string("when drills start: cron expression (local time)"),
            "timezone": string("IANA time zone (default UTC)"),
            "window": string("local hours in which a drill may start (\"01:00-05:00\")"),
            "interval": duration("how long a passing drill proves a service (default: tier 1 30d, tier 2 90d, else 365d)")
        }),
    );
    let plan = table(
        &["id", "services"],
        json!({
            "id": id("unique among recovery plans"),
            "description": string("what it is for"),
            "services": {
                "oneOf": [ { "const": "all" }, { "type": "array", "items": { "type": "string" } } ],
                "description": "the services it brings back (with everything they need), or \"all\""
            },
            "concurrency": { "type": "integer", "minimum": 1, "description": "services restored side by side within a wave, at most (default 4)" },
            "defer_tiers": { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 4 }, "description": "tiers left for later (recovered only when a recovered service needs them)" }
        }),
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://haven.example/schemas/catalog.json",
        "title": "Haven continuity catalog file",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "service": array_of(service, "business services"),
            "system": array_of(system, "technical systems"),
            "policy": array_of(policy, "protection policies"),
            "repository": array_of(repository, "backup repositories"),
            "team": array_of(team, "teams"),
            "vendor": array_of(vendor, "vendors"),
            "regulation": array_of(regulation, "regulations"),
            "channel": array_of(channel, "notification channels"),
            "calendar": array_of(calendar, "business-hours calendars"),
            "escalation": array_of(escalation, "escalation policies, tried in order"),
            "maintenance": array_of(maintenance, "maintenance windows"),
            "drill": array_of(drill, "drill schedules: when the server drills which services"),
            "plan": array_of(plan, "recovery plans")
        }
    })
}
