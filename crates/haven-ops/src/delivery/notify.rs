//! Notifications: render an alert with templates and deliver it through
//! a step's channels: e-mail (SMTP with STARTTLS or TLS and
//! authentication), a signed webhook, Slack and Teams webhooks, or a
//! command. A failed delivery is retried with a doubling delay; when a
//! channel keeps failing, the next channel of the step gets the message,
//! so one broken channel never silences an alert. Every attempt is
//! recorded in the store and exported as an event.
//!
//! Errors never carry a secret: URLs (which may hold tokens) are left
//! out of them, passwords are only read when sending.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use haven_model::alerts::{Alert, AlertState, Delivery, Notification, PendingNotification};
use haven_model::catalog::watch::{Channel, ChannelKind, MaybeSecret, SmtpSecurity};
use haven_store::Store;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::delivery::export::{self, Event, Exporter};
use crate::instance::redact::{redact, redact_in_place};
/// A secret a channel refers to, read off the async threads (a file may
/// sit on a slow mount).
async fn read_secret(reference: &haven_model::catalog::SecretRef) -> Result<String, String> {
    let reference = reference.clone();
    tokio::task::spawn_blocking(move || crate::instance::secrets::read_secret(&reference))
        .await
        .unwrap_or_else(|e| Err(format!("reading the secret failed: {e}")))
}

/// Header carrying the webhook's signature: `sha256=<hex>` of
/// HMAC-SHA256(secret, `<timestamp>.<body>`).
pub const SIGNATURE_HEADER: &str = "X-Haven-Signature";
/// Header carrying the Unix time (seconds) the webhook was signed at;
/// receivers should refuse old ones (replays).
pub const TIMESTAMP_HEADER: &str = "X-Haven-Timestamp";

/// The default subject template.
pub const DEFAULT_SUBJECT: &str =
    "[{{ severity | upper }}] {{ summary }}{% if service %} ({{ service }}){% endif %}";

/// The default body template.
pub const DEFAULT_BODY: &str = "\
{{ summary }}

Alert:      #{{ id }} {{ rule }} ({{ severity }}){% if test %} (TEST MESSAGE){% endif %}
{%- if service %}
Service:    {{ service }}{% if tier %} (tier {{ tier }}){% endif %}{% endif %}
{%- if system %}
System:     {{ system }}{% if backup_set %}/{{ backup_set }}{% endif %}{% endif %}
{%- if repository %}
Repository: {{ repository }}{% endif %}
Since:      {{ since }}
Seen:       {{ occurrences }} time{% if occurrences != 1 %}s{% endif %}, last {{ last_seen }}
{%- if suppressed_by %}
Held back by maintenance window {{ suppressed_by }}; notified at its end.{% endif %}
{% for key, value in facts|items %}
{{ key }}: {{ value }}{% endfor %}
{% if not test %}
Acknowledge: haven alert ack {{ id }}
Resolve:     haven alert resolve {{ id }}
{% endif %}";

/// What templates see of an alert.
#[derive(Clone, Debug, Serialize)]
pub struct MessageContext {
    /// Alert number (0 for tests).
    pub id: i64,
    /// Rule id.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// One line.
    pub summary: String,
    /// Service.
    pub service: Option<String>,
    /// Its tier.
    pub tier: Option<u8>,
    /// System.
    pub system: Option<String>,
    /// Backup set.
    pub backup_set: Option<String>,
    /// Repository.
    pub repository: Option<String>,
    /// Condition start (RFC 3339).
    pub since: String,
    /// Last seen (RFC 3339).
    pub last_seen: String,
    /// Occurrences.
    pub occurrences: u32,
    /// Facts.
    pub facts: BTreeMap<String, String>,
    /// The maintenance window that held it back.
    pub suppressed_by: Option<String>,
    /// A test message (`haven notify test`).
    pub test: bool,
}

impl MessageContext {
    /// The context of an alert.
    pub fn of(alert: &Alert) -> MessageContext {
        MessageContext {
            id: alert.id,
            rule: alert.rule.id().into(),
            severity: alert.severity.as_str().into(),
            summary: alert.summary.clone(),
            service: alert.subject.service.clone(),
            tier: alert.subject.tier,
            system: alert.subject.system.clone(),
            backup_set: alert.subject.backup_set.clone(),
            repository: alert.subject.repository.clone(),
            since: alert.condition_since.to_string(),
            last_seen: alert.last_seen.to_string(),
            occurrences: alert.occurrences,
            facts: alert.facts.clone(),
            suppressed_by: alert.suppressed_by.clone(),
            test: false,
        }
    }

    /// A test message for `haven notify test`.
    pub fn test(channel: &str, now: Timestamp) -> MessageContext {
        MessageContext {
            id: 0,
            rule: "notify-test".into(),
            severity: "info".into(),
            summary: format!("Haven test message through channel {channel}"),
            service: None,
            tier: None,
            system: None,
            backup_set: None,
            repository: None,
            since: now.to_string(),
            last_seen: now.to_string(),
            occurrences: 1,
            facts: BTreeMap::from([(
                "note".to_string(),
                "if you read this, the channel works".to_string(),
            )]),
            suppressed_by: None,
            test: true,
        }
    }
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Subject (one line).
    pub subject: String,
    /// Body (plain text).
    pub body: String,
}

/// The templates in use: defaults, overridden by `<data dir>/templates/
/// subject.j2` and `body.j2`, overridden per channel by its `subject`
/// and `body`.
#[derive(Clone, Debug)]
pub struct Templates {
    subject: String,
    body: String,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            subject: DEFAULT_SUBJECT.into(),
            body: DEFAULT_BODY.into(),
        }
    }
}

impl Templates {
    /// The templates of a data dir (defaults where it has none).
    pub fn load(data_dir: &std::path::Path) -> Result<Templates, String> {
        let read = |name: &str, default: &str| {
            let path = data_dir.join("templates").join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default.to_string()),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        };
        let templates = Templates {
            subject: read("subject.j2", DEFAULT_SUBJECT)?,
            body: read("body.j2", DEFAULT_BODY)?,
        };
        // Fail at start, not at 3 a.m. when the first alert fires.
        templates.render(
            None,
            &MessageContext::test("template-check", Timestamp::UNIX_EPOCH),
        )?;
        Ok(templates)
    }

    /// Render for a channel.
    pub fn render(
        &self,
        channel: Option<&Channel>,
        context: &MessageContext,
    ) -> Result<Message, String> {
        let subject = channel
            .and_then(|c| c.subject.as_deref())
            .unwrap_or(&self.subject);
        let body = channel
            .and_then(|c| c.body.as_deref())
            .unwrap_or(&self.body);
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        let render = |name: &str, source: &str| {
            env.render_str(source, context)
                .map_err(|e| format!("template {name}: {e}"))
        };
        let subject = render("subject", subject)?;
        Ok(Message {
            // A subject is one line: a template must not break headers.
            subject: subject.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            body: render("body", body)?,
        })
    }
}

/// Why a delivery failed (no secrets).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

fn http_client(timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("haven/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError(format!("cannot build an HTTP client: {}", e.without_url())))
}

async fn url_of(url: &MaybeSecret) -> Result<String, DeliveryError> {
    match url {
        MaybeSecret::Plain(u) => Ok(u.clone()),
        MaybeSecret::Secret(r) => read_secret(r).await.map_err(DeliveryError),
    }
}

/// POST JSON to a URL (resolved from its reference only now).
pub(crate) async fn post(
    url: &MaybeSecret,
    timeout: Duration,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<(), DeliveryError> {
    let url = url_of(url).await?;
    let mut request = http_client(timeout)?
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.map_err(|e| {
        // Without the URL: it may carry a token.
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        DeliveryError(text)
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError(format!(
            "the receiver answered HTTP {status}"
        )))
    }
}

/// The HMAC-SHA256 signature of a webhook body at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// The JSON a webhook receives.
pub fn webhook_payload(message: &Message, context: &MessageContext, now: Timestamp) -> Value {
    json!({
        "version": 1,
        "sent_at": now.to_string(),
        "subject": message.subject,
        "text": message.body,
        "alert": context,
    })
}

/// Deliver once through a channel, within its `timeout` (a receiver
/// that stops answering must not hold the notification up). What is sent
/// and the error are redacted: no secret leaves through a channel or is
/// recorded with the attempt.
pub async fn deliver(
    channel: &Channel,
    message: &Message,
    context: &MessageContext,
    now: Timestamp,
) -> Result<(), DeliveryError> {
    let timeout = channel.timeout.unsigned_abs();
    let message = Message {
        subject: redact(&message.subject).into_owned(),
        body: redact(&message.body).into_owned(),
    };
    let mut context = context.clone();
    redact_in_place(&mut context.summary);
    for value in context.facts.values_mut() {
        redact_in_place(value);
    }
    tokio::time::timeout(timeout, deliver_once(channel, &message, &context, now))
        .await
        .unwrap_or_else(|_| {
            Err(DeliveryError(format!(
                "no answer within {} (the channel's timeout)",
                haven_model::catalog::duration::format_duration(channel.timeout)
            )))
        })
        .map_err(|DeliveryError(text)| DeliveryError(redact(&text).into_owned()))
}

async fn deliver_once(
    channel: &Channel,
    message: &Message,
    context: &MessageContext,
    now: Timestamp,
) -> Result<(), DeliveryError> {
    let timeout = channel.timeout.unsigned_abs();
    match &channel.kind {
        ChannelKind::Email {
            smtp,
            security,
            username,
            password,
            from,
            to,
            ca_file,
        } => {
            let server = MailServer {
                smtp,
                security: *security,
                username: username.as_deref(),
                password: password.as_ref(),
                from,
                to,
                ca_file: ca_file.as_deref(),
            };
            send_mail(&server, message, timeout).await
        }
        ChannelKind::Webhook { url, secret } => {
            let body = serde_json::to_vec(&webhook_payload(message, context, now))
                .map_err(|e| DeliveryError(format!("cannot encode the payload: {e}")))?;
            let mut headers = Vec::new();
            if let Some(secret) = secret {
                let key = read_secret(secret).await.map_err(DeliveryError)?;
                let ts = now.as_second();
                headers.push((TIMESTAMP_HEADER, ts.to_string()));
                headers.push((SIGNATURE_HEADER, sign(key.as_bytes(), ts, &body)));
            }
            post(url, timeout, body, &headers).await
        }
        ChannelKind::Slack { url } => {
            let body = json!({ "text": format!("*{}*\n{}", message.subject, message.body) });
            post(url, timeout, body.to_string().into_bytes(), &[]).await
        }
        ChannelKind::Teams { url } => {
            let card = json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            { "type": "TextBlock", "text": message.subject, "weight": "Bolder", "size": "Medium", "wrap": true },
                            { "type": "TextBlock", "text": message.body, "wrap": true, "fontType": "Monospace" }
                        ]
                    }
                }]
            });
            post(url, timeout, card.to_string().into_bytes(), &[]).await
        }
        ChannelKind::Command { run, env } => {
            let env = env.clone();
            let env =
                tokio::task::spawn_blocking(move || crate::instance::secrets::resolve_env(&env))
                    .await
                    .map_err(|e| DeliveryError(format!("reading the command's environment: {e}")))?
                    .map_err(DeliveryError)?;
            run_command(run, &env, message, context, timeout).await
        }
    }
}

/// An e-mail channel as the catalog gives it.
struct MailServer<'a> {
    smtp: &'a str,
    security: SmtpSecurity,
    username: Option<&'a str>,
    password: Option<&'a haven_model::catalog::SecretRef>,
    from: &'a str,
    to: &'a [String],
    ca_file: Option<&'a str>,
}

impl MailServer<'_> {
    /// Host and port (the port from the security when not given).
    fn address(&self) -> Result<(&str, u16), DeliveryError> {
        Ok(match self.smtp.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(['[', ']']),
                p.parse::<u16>().map_err(|_| {
                    DeliveryError(format!("{:?}: the port is not a number", self.smtp))
                })?,
            ),
            None => (
                self.smtp,
                match self.security {
                    SmtpSecurity::Tls => 465,
                    SmtpSecurity::Starttls => 587,
                    SmtpSecurity::None => 25,
                },
            ),
        })
    }

    /// TLS for `host`, trusting the channel's `ca_file` besides the
    /// system's roots.
    fn tls(
        &self,
        host: &str,
    ) -> Result<lettre::transport::smtp::client::TlsParameters, DeliveryError> {
        use lettre::transport::smtp::client::{Certificate, TlsParameters};
        let mut builder = TlsParameters::builder(host.to_string());
        if let Some(path) = self.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| DeliveryError(format!("cannot read ca_file {path}: {e}")))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| DeliveryError(format!("ca_file {path}: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| DeliveryError(format!("TLS setup: {e}")))
    }

    /// The message as a mail from `from` to every `to`.
    fn mail(&self, message: &Message) -> Result<lettre::Message, DeliveryError> {
        use lettre::message::header::ContentType;
        let from = self.from;
        let mut email = lettre::Message::builder()
            .from(
                from.parse()
                    .map_err(|e| DeliveryError(format!("`from` {from:?}: {e}")))?,
            )
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for recipient in self.to {
            email = email.to(recipient
                .parse()
                .map_err(|e| DeliveryError(format!("`to` {recipient:?}: {e}")))?);
        }
        email
            .body(message.body.clone())
            .map_err(|e| DeliveryError(format!("cannot build the mail: {e}")))
    }
}

async fn send_mail(
    server: &MailServer<'_>,
    message: &Message,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::Tls;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let (host, port) = server.address()?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(timeout));
    transport = match server.security {
        SmtpSecurity::Starttls => transport.tls(Tls::Required(server.tls(host)?)),
        SmtpSecurity::Tls => transport.tls(Tls::Wrapper(server.tls(host)?)),
        SmtpSecurity::None => transport.tls(Tls::None),
    };
    if let Some(user) = server.username {
        let secret = server
            .password
            .ok_or_else(|| DeliveryError("`username` is set but `password` is not".into()))?;
        let pass = read_secret(secret).await.map_err(DeliveryError)?;
        transport = transport.credentials(Credentials::new(user.to_string(), pass));
    }
    let email = server.mail(message)?;
    transport
        .build()
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| DeliveryError(format!("SMTP {host}:{port}: {e}")))
}

async fn run_command(
    run: &str,
    env: &[(String, String)],
    message: &Message,
    context: &MessageContext,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(run)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("HAVEN_SUBJECT", &message.subject)
        .env("HAVEN_BODY", &message.body)
        .env("HAVEN_ALERT_ID", context.id.to_string())
        .env("HAVEN_RULE", &context.rule)
        .env("HAVEN_SEVERITY", &context.severity)
        .env("HAVEN_SERVICE", context.service.as_deref().unwrap_or(""))
        .env("HAVEN_SYSTEM", context.system.as_deref().unwrap_or(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| DeliveryError(format!("cannot start the command: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(message.body.as_bytes()).await;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| DeliveryError(format!("the command took longer than {timeout:?}")))?
        .map_err(|e| DeliveryError(format!("the command failed: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("").trim();
    let said = if last.is_empty() {
        String::new()
    } else {
        format!(": {last}")
    };
    Err(DeliveryError(match output.status.code() {
        Some(code) => format!("the command exited with {code}{said}"),
        None => format!("the command was killed{said}"),
    }))
}

/// What happened to a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// The channel that accepted it, if any.
    pub delivered_by: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<Delivery>,
}

/// Sends notifications and records every attempt.
pub struct Notifier {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    channels: Vec<Channel>,
    templates: Templates,
    exporter: Arc<Exporter>,
    hook: Option<DeliveryHook>,
}

/// Told of every delivery attempt once it is recorded (a server's audit
/// log: notifications sent are changes Haven's automation makes).
pub type DeliveryHook = Arc<
    dyn Fn(Delivery) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

impl Notifier {
    /// A notifier for a catalog's channels.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        channels: Vec<Channel>,
        templates: Templates,
        exporter: Arc<Exporter>,
    ) -> Notifier {
        Notifier {
            store,
            clock,
            channels,
            templates,
            exporter,
            hook: None,
        }
    }

    /// The same, telling `hook` of every delivery attempt.
    pub fn with_hook(mut self, hook: DeliveryHook) -> Notifier {
        self.hook = Some(hook);
        self
    }

    /// Deliver once, without a queue (`haven notify test`): every
    /// channel in order, each with its retries, until one accepts.
    pub async fn send(&self, notification: &Notification) -> Report {
        self.deliver_from(notification, None, true).await
    }

    /// Deliver without writing anything to the store (it is the store
    /// that fails: the `store-unavailable` alert); the attempts are in
    /// the report, to be recorded later.
    pub async fn send_unrecorded(&self, notification: &Notification) -> Report {
        self.deliver_from(notification, None, false).await
    }

    /// Queue an alert's notification in the store, then deliver it; the
    /// queued row follows the delivery (which channel, which attempt, the
    /// backoff) and goes when a channel took it or every one failed. A
    /// notification without an alert is just sent.
    pub async fn send_queued(&self, notification: &Notification) -> Report {
        let Some(alert) = &notification.alert else {
            return self.send(notification).await;
        };
        let now = self.clock.now();
        let pending = PendingNotification {
            id: 0,
            alert_id: alert.id,
            step: notification.step,
            channels: notification.channels.clone(),
            channel: 0,
            attempt: 1,
            not_before: now,
            queued_at: now,
        };
        match self.store.queue_notification(&pending).await {
            Ok(queued) => self.deliver_from(notification, Some(queued), true).await,
            Err(e) => {
                tracing::error!("cannot queue a notification (sending it anyway): {e}");
                self.send(notification).await
            }
        }
    }

    /// Resume a notification queued before the server stopped, where it
    /// stood. One whose alert was acknowledged or resolved meanwhile is
    /// dropped: somebody has it already.
    pub async fn resume(&self, pending: PendingNotification) {
        let alert = match self.store.alert(pending.alert_id).await {
            Ok(alert) => alert,
            Err(e) => {
                tracing::error!(
                    alert = pending.alert_id,
                    "cannot resume a notification: {e}"
                );
                return;
            }
        };
        let Some(alert) = alert.filter(|a| a.state == AlertState::Open) else {
            tracing::info!(
                alert = pending.alert_id,
                "queued notification dropped: its alert is no longer open"
            );
            self.finish(pending.id).await;
            return;
        };
        tracing::info!(
            alert = alert.id,
            channel = pending.channels.get(pending.channel).map(String::as_str),
            attempt = pending.attempt,
            "resuming a notification queued before the restart"
        );
        let notification = Notification {
            alert: Some(alert),
            step: pending.step,
            channels: pending.channels.clone(),
        };
        self.deliver_from(&notification, Some(pending), true).await;
    }

    /// The delivery itself, from where `queued` stands (the start without
    /// one), saving its progress to the queue before every wait; each
    /// attempt is recorded in the store if `recorded`.
    async fn deliver_from(
        &self,
        notification: &Notification,
        mut queued: Option<PendingNotification>,
        recorded: bool,
    ) -> Report {
        let context = match &notification.alert {
            Some(alert) => MessageContext::of(alert),
            None => MessageContext::test(
                notification.channels.first().map_or("", String::as_str),
                self.clock.now(),
            ),
        };
        let mut report = Report {
            delivered_by: None,
            attempts: Vec::new(),
        };
        let (first_channel, first_attempt, not_before) =
            queued.as_ref().map_or((0, 1, None), |q| {
                (q.channel, q.attempt.max(1), Some(q.not_before))
            });
        for (index, id) in notification.channels.iter().enumerate().skip(first_channel) {
            let resumed = index == first_channel;
            let Some(channel) = self.channels.iter().find(|c| &c.id.value == id) else {
                let attempt = self
                    .record(
                        notification,
                        (id, "unknown", 1),
                        Err(DeliveryError(format!("no channel {id} in the catalog"))),
                        recorded,
                    )
                    .await;
                report.attempts.push(attempt);
                continue;
            };
            let message = self.templates.render(Some(channel), &context);
            let start = if resumed { first_attempt } else { 1 };
            // The backoff doubles per retry; a resumed retry waits what was
            // left of its backoff.
            let mut delay = channel
                .retry_delay
                .unsigned_abs()
                .saturating_mul(1 << (start - 1).min(16));
            if resumed && let Some(at) = not_before {
                let left = at.duration_since(self.clock.now());
                if left.is_positive() {
                    tokio::time::sleep(left.unsigned_abs()).await;
                }
            }
            for attempt in start..=channel.retries + 1 {
                let result = match &message {
                    Ok(message) => deliver(channel, message, &context, self.clock.now()).await,
                    Err(e) => Err(DeliveryError(e.clone())),
                };
                let ok = result.is_ok();
                let attempted = self
                    .record(
                        notification,
                        (id, channel.kind.type_name(), attempt),
                        result,
                        recorded,
                    )
                    .await;
                report.attempts.push(attempted);
                if ok {
                    report.delivered_by = Some(id.clone());
                    if let Some(q) = &queued {
                        self.finish(q.id).await;
                    }
                    return report;
                }
                if attempt <= channel.retries {
                    let backoff = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
                    self.progress(&mut queued, index, attempt + 1, self.clock.now() + backoff)
                        .await;
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
            tracing::warn!(channel = %id, "channel failed; failing over to the next channel of the step");
            self.progress(&mut queued, index + 1, 1, self.clock.now())
                .await;
        }
        tracing::error!(
            alert = notification.alert.as_ref().map(|a| a.id),
            "no channel accepted the notification ({} tried)",
            notification.channels.join(", ")
        );
        if let Some(q) = &queued {
            self.finish(q.id).await;
        }
        report
    }

    /// Save where a queued delivery stands (a failure to save is logged:
    /// the delivery goes on, only its resumption would be lost).
    async fn progress(
        &self,
        queued: &mut Option<PendingNotification>,
        channel: usize,
        attempt: u32,
        not_before: Timestamp,
    ) {
        let Some(q) = queued else {
            return;
        };
        q.channel = channel;
        q.attempt = attempt;
        q.not_before = not_before;
        if let Err(e) = self.store.update_notification(q).await {
            tracing::error!("cannot save a notification's progress: {e}");
        }
    }

    async fn finish(&self, id: i64) {
        if let Err(e) = self.store.finish_notification(id).await {
            tracing::error!("cannot mark a queued notification done: {e}");
        }
    }

    /// Log, record (if `in_store`) and export one attempt: `(channel,
    /// its type, attempt number)`.
    async fn record(
        &self,
        notification: &Notification,
        (channel, channel_type, attempt): (&str, &str, u32),
        result: Result<(), DeliveryError>,
        in_store: bool,
    ) -> Delivery {
        let at = self.clock.now();
        let delivery = Delivery {
            id: 0,
            alert_id: notification.alert.as_ref().map(|a| a.id),
            channel: channel.into(),
            channel_type: channel_type.into(),
            step: notification.step,
            attempt,
            at,
            ok: result.is_ok(),
            error: result.err().map(|e| e.0),
        };
        match &delivery.error {
            None => tracing::info!(channel, attempt, "notification delivered"),
            Some(e) => tracing::warn!(channel, attempt, "notification not delivered: {e}"),
        }
        let delivery = if in_store {
            match self.store.record_delivery(&delivery).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!("cannot record a delivery attempt: {e}");
                    delivery
                }
            }
        } else {
            delivery
        };
        if let Some(hook) = &self.hook {
            hook(delivery.clone()).await;
        }
        let (action, outcome, level) = if delivery.ok {
            ("notification-delivered", export::Outcome::Success, "info")
        } else {
            ("notification-failed", export::Outcome::Failure, "warning")
        };
        self.exporter.emit(
            Event::new(action, "event", "process", at)
                .outcome(outcome)
                .level(level)
                .message(match &delivery.error {
                    None => format!("notification delivered through {channel}"),
                    Some(e) => format!("notification through {channel} failed: {e}"),
                })
                .haven(
                    "notification",
                    json!({
                        "id": delivery.id,
                        "alert_id": delivery.alert_id,
                        "channel": delivery.channel,
                        "channel_type": delivery.channel_type,
                        "step": delivery.step,
                        "attempt": delivery.attempt,
                        "error": delivery.error,
                    }),
                ),
        );
        delivery
    }
}

/// Send notifications on tasks of their own (retries wait in real time).
pub fn dispatch(notifier: &Arc<Notifier>, notifications: Vec<Notification>) {
    for n in notifications {
        let notifier = Arc::clone(notifier);
        tokio::spawn(async move {
            notifier.send_queued(&n).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2 shape: key "Jefe"; message built by us.
        let sig = sign(b"Jefe", 1_700_000_000, b"{}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_eq!(sig, sign(b"Jefe", 1_700_000_000, b"{}"));
        assert_ne!(sig, sign(b"Jefe", 1_700_000_001, b"{}"));
        assert_ne!(sig, sign(b"jefe", 1_700_000_000, b"{}"));
    }

    #[test]
    fn channel_templates_override_the_defaults_and_a_data_dir_overrides_both() {
        use haven_model::catalog::{Located, Origin};
        let mut channel = Channel {
            id: Located::new("sms".into(), Origin::default()),
            kind: ChannelKind::Command {
                run: "true".into(),
                env: Vec::new(),
            },
            retries: 0,
            retry_delay: jiff::SignedDuration::ZERO,
            timeout: jiff::SignedDuration::from_secs(1),
            subject: Some("{{ severity }}: {{ summary }}\nsecond line".into()),
            body: Some("{{ rule }} #{{ id }}".into()),
        };
        let context = MessageContext::test("sms", Timestamp::UNIX_EPOCH);
        let m = Templates::default()
            .render(Some(&channel), &context)
            .expect("renders");
        // Subjects are one line whatever the template does.
        assert_eq!(
            m.subject,
            "info: Haven test message through channel sms second line"
        );
        assert_eq!(m.body, "notify-test #0");
        channel.body = Some("{{ broken".into());
        let e = Templates::default()
            .render(Some(&channel), &context)
            .expect_err("a syntax error");
        assert!(e.contains("template body"), "{e}");

        let dir = std::env::temp_dir().join(format!("haven-templates-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("templates")).expect("dir");
        std::fs::write(dir.join("templates/subject.j2"), "HAVEN {{ rule }}").expect("write");
        let loaded = Templates::load(&dir).expect("loads");
        let m = loaded.render(None, &context).expect("renders");
        assert_eq!(m.subject, "HAVEN notify-test");
        std::fs::write(dir.join("templates/subject.j2"), "{% if %}").expect("write");
        assert!(
            Templates::load(&dir).is_err(),
            "checked at load, not at 3 a.m."
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn default_templates_render_alerts_and_tests() {
        let t = Templates::default();
        let m = t
            .render(
                None,
                &MessageContext::test("ops-mail", Timestamp::UNIX_EPOCH),
            )
            .expect("renders");
        assert_eq!(
            m.subject,
            "[INFO] Haven test message through channel ops-mail"
        );
        assert!(m.body.contains("(TEST MESSAGE)"), "{}", m.body);
        assert!(m.body.contains("note: if you read this, the channel works"));
        assert!(!m.body.contains("haven alert ack"), "{}", m.body);
    }
}
