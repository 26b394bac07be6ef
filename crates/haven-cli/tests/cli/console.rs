//! The console in a real browser: headless Chromium driven through
//! chromedriver (Debian's packages, which scripts/test.sh installs),
//! against a real server. A person logs in, sees the overview, opens the
//! alerts and acknowledges one; another logs in and approves a tier 1
//! recovery a third asked for, which then restores real data. Every page
//! is kept as a screenshot (CARGO_TARGET_TMPDIR/console-screenshots).

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use haven_model::access::Role;
use serde_json::{Value, json};

use crate::access::{Estate, call, free_port, http};
use crate::server::wait_for;

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let bin =
            std::env::var("HAVEN_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}): scripts/test.sh installs chromium and chromium-driver; or set HAVEN_TEST_CHROMEDRIVER"));
        let mut driver = Driver { child, port };
        wait_for("chromedriver", || {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited with {status}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        driver
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keep what the browser shows as `name`.png.
async fn screenshot(browser: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write");
}

async fn log_in(browser: &Client, base: &str, name: &str) {
    browser.goto(&format!("{base}/")).await.expect("open");
    let url = browser.current_url().await.expect("url");
    assert!(
        url.as_str().ends_with("/login"),
        "to the login page first: {url}"
    );
    accessible(browser, "/login").await;
    browser
        .find(Locator::Css("#name"))
        .await
        .expect("name")
        .send_keys(name)
        .await
        .expect("type");
    browser
        .find(Locator::Css("#password"))
        .await
        .expect("password")
        .send_keys("a long enough passphrase")
        .await
        .expect("type");
    click(browser, Locator::Css("form.login button"), "button").await;
    // The overview, once the browser has followed the login's redirect.
    browser
        .wait()
        .for_element(Locator::Css("nav[aria-label='Main']"))
        .await
        .expect("the overview after logging in");
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.path(), "/", "the overview after logging in");
}

/// axe-core (the npm package, which scripts/test.sh installs) finds no
/// serious or critical accessibility violation on the page shown.
async fn accessible(browser: &Client, page: &str) {
    let path = std::env::var("HAVEN_TEST_AXE").unwrap_or_else(|_| {
        panic!("HAVEN_TEST_AXE is not set: scripts/test.sh installs axe-core and sets it")
    });
    let axe = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read axe-core at {path}: {e}"));
    browser
        .execute(&axe, Vec::new())
        .await
        .expect("axe-core loads");
    let found = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(
               r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')),
               e => done(['axe did not run: ' + e]));",
            Vec::new(),
        )
        .await
        .expect("axe-core runs");
    assert_eq!(found, json!([]), "{page}: serious accessibility violations");
}

/// The pass is not blind: an image without a text alternative, put on
/// the page, is found.
#[test]
fn the_accessibility_pass_finds_a_violation_put_on_the_page() {
    let estate = Estate::new("");
    let (_server, address, _) = estate.start();
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let browser = driver.browser().await;
        browser
            .goto(&format!("http://{address}/login"))
            .await
            .expect("open");
        accessible(&browser, "/login").await;
        browser
            .execute(
                "const img = document.createElement('img'); img.src = '/assets/none.png'; document.querySelector('main').appendChild(img);",
                Vec::new(),
            )
            .await
            .expect("an image without alt");
        let blind = tokio::spawn(async move {
            accessible(&browser, "/login with an image").await;
        })
        .await;
        let why = blind.expect_err("the violation is found").into_panic();
        let said = why
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(said.contains("image-alt"), "{said}");
    });
}

/// Click what `locator` finds (`what` says what it is, when it is not
/// there).
async fn click(browser: &Client, locator: Locator<'_>, what: &str) {
    browser
        .find(locator)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
}

/// Start a drill of `subject` (`system:ID`, `service:ID`) from the
/// drills page.
async fn run_drill(browser: &Client, base: &str, subject: &str) {
    browser
        .goto(&format!("{base}/drills"))
        .await
        .expect("drills");
    browser
        .find(Locator::Css("#add-subject"))
        .await
        .expect("the form's service or system")
        .select_by_value(subject)
        .await
        .unwrap_or_else(|e| panic!("{subject} offered: {e}"));
    click(
        browser,
        Locator::XPath("//button[text()='Run the drill']"),
        "the button",
    )
    .await;
}

async fn log_out(browser: &Client) {
    click(
        browser,
        Locator::XPath("//button[text()='Log out']"),
        "logout",
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Css("#name"))
        .await
        .expect("the login page again");
}

async fn text(browser: &Client) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text")
}

#[test]
fn a_person_logs_in_acknowledges_an_alert_and_another_approves_a_recovery() {
    let estate = Estate::new("[access]\nfour_eyes = true\n");
    estate.user("ana", &[Role::Operator], &[]);
    estate.user("bo", &[Role::Approver], &[]);
    estate.user("root-admin", &[Role::Admin], &[]);
    let carol = estate.user("carol", &[Role::RestoreOperator], &[]);
    let (_server, address, instance) = estate.start();
    for system in ["payments-files", "web-files"] {
        let path = format!("/systems/{system}/run");
        assert_eq!(call(&address, "POST", &path, &instance, &json!({})).0, 202);
    }
    wait_for("the backups and the failed one's alert", || {
        let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
        let (_, jobs) = call(&address, "GET", "/jobs", &instance, &Value::Null);
        alerts.as_array().is_some_and(|a| !a.is_empty())
            && jobs.as_array().is_some_and(|j| {
                j.iter()
                    .any(|j| j["system"] == "payments-files" && j["outcome"] == "success")
            })
    });
    // Carol asks for a tier 1 recovery: it waits for a second person.
    let target = estate.ws.path("recovered");
    let alternate = format!("alternate:{}", target.display());
    let asked = estate.haven(
        &[
            "--server",
            &address,
            "recover",
            "--services",
            "payments",
            "--target",
            &alternate,
        ],
        "",
        Some(&carol),
    );
    assert_eq!(
        asked.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );

    let base = format!("http://{address}");
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let browser = driver.browser().await;
        log_in(&browser, &base, "ana").await;
        let overview = text(&browser).await;
        assert!(
            overview.contains("Tier 1") && overview.contains("payments"),
            "{overview}"
        );
        assert!(
            overview.contains("Money at risk: EUR 0 per hour")
                && overview.contains("of EUR 12,500 per hour"),
            "the BIA's money at risk: {overview}"
        );
        assert!(
            overview.contains("major") || overview.contains("critical"),
            "open alerts counted: {overview}"
        );
        screenshot(&browser, "overview").await;
        accessible(&browser, "/").await;

        browser
            .goto(&format!("{base}/alerts"))
            .await
            .expect("alerts");
        screenshot(&browser, "alerts").await;
        accessible(&browser, "/alerts").await;
        click(
            &browser,
            Locator::XPath("//button[text()='Acknowledge']"),
            "an Acknowledge button",
        )
        .await;
        browser
            .wait()
            .for_element(Locator::XPath("//td[text()='acknowledged']"))
            .await
            .expect("the alert shown acknowledged");
        screenshot(&browser, "alerts-acknowledged").await;
        log_out(&browser).await;
        log_in(&browser, &base, "bo").await;
        browser
            .goto(&format!("{base}/requests"))
            .await
            .expect("requests");
        let pending = text(&browser).await;
        assert!(
            pending.contains("recovery.start") && pending.contains("pending"),
            "{pending}"
        );
        screenshot(&browser, "requests").await;
        accessible(&browser, "/requests").await;
        click(
            &browser,
            Locator::XPath("//button[text()='Approve']"),
            "an Approve button",
        )
        .await;
        browser
            .wait()
            .for_element(Locator::XPath(
                "//td[starts-with(text(), 'approved: recovery:')]",
            ))
            .await
            .expect("the request shown approved, with the run it started");
        screenshot(&browser, "requests-approved").await;
        log_out(&browser).await;

        // An admin sees every page.
        log_in(&browser, &base, "root-admin").await;
        for (path, heading) in [
            ("/jobs", "Jobs"),
            ("/jobs/1", "Job 1"),
            ("/maintenance", "Maintenance windows"),
            ("/drills", "Drills"),
            ("/repositories", "Repositories"),
            ("/recoveries", "Recoveries"),
            ("/recoveries/1", "Recovery run 1"),
            ("/audit", "Audit log"),
            ("/users", "Users and tokens"),
            ("/services/payments", "payments"),
        ] {
            browser.goto(&format!("{base}{path}")).await.expect("open");
            let h1 = browser
                .find(Locator::Css("h1"))
                .await
                .expect("a heading")
                .text()
                .await
                .expect("text");
            assert!(h1.starts_with(heading), "{path}: {h1}");
            let name = path.trim_start_matches('/').replace('/', "-");
            screenshot(&browser, &name).await;
            accessible(&browser, path).await;
        }
        // The recovery's Gantt chart: a bar per step on one time axis.
        browser
            .goto(&format!("{base}/recoveries/1"))
            .await
            .expect("open");
        let chart = browser
            .find(Locator::Css("figure.chart svg[role='img']"))
            .await
            .expect("the run's chart");
        let bars = chart.find_all(Locator::Css("rect")).await.expect("bars");
        assert!(!bars.is_empty(), "a bar per step");
        // The service's backup history: a bar per backup.
        browser
            .goto(&format!("{base}/services/payments"))
            .await
            .expect("open");
        let history = browser
            .find(Locator::Css(
                "svg[aria-label^='backup history of payments-files']",
            ))
            .await
            .expect("the backup history");
        let runs = history.find_all(Locator::Css("rect")).await.expect("bars");
        assert_eq!(
            runs.len(),
            2,
            "the one payments backup: its duration and size"
        );
        browser
            .find(Locator::Css(
                "svg[aria-label^='age of the newest restore point of payments-files']",
            ))
            .await
            .expect("its data age against the RPO");
        browser.goto(&format!("{base}/audit")).await.expect("open");
        let audit = text(&browser).await;
        assert!(!audit.contains("does NOT verify"), "{audit}");
        // Filtered: ana's acknowledgement only.
        browser
            .goto(&format!("{base}/audit?actor=ana&action=alert."))
            .await
            .expect("open");
        let rows = browser
            .find_all(Locator::Css("main table tbody tr"))
            .await
            .expect("rows");
        assert_eq!(rows.len(), 1, "ana's one alert action");
        let row = rows[0].text().await.expect("text");
        assert!(
            row.contains("alert.ack") && row.contains("user:ana"),
            "{row}"
        );
        screenshot(&browser, "audit-filtered").await;
        accessible(&browser, "/audit?actor=ana").await;
        browser.close().await.expect("close");
    });
    let (_, acked) = call(&address, "GET", "/alerts", &instance, &Value::Null);
    let acked = acked
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["state"] == "acknowledged")
        .cloned()
        .expect("acknowledged");
    assert!(
        acked["acknowledged_by"]
            .as_str()
            .expect("by")
            .starts_with("user:ana (ses_"),
        "{acked}"
    );
    let restored = target.join("payments-files").join(
        estate
            .ws
            .path("payments/ledger.csv")
            .strip_prefix("/")
            .expect("absolute"),
    );
    wait_for("the approved recovery to restore the file", || {
        restored.exists()
    });
}

/// An htmx refresh of the overview gets the grid alone, and every page
/// says it varies with `HX-Request` (so a cache never mixes the two).
#[test]
fn the_overview_refreshes_as_a_fragment() {
    let estate = Estate::new("");
    estate.user("ana", &[Role::Auditor], &[]);
    let (_server, address, _) = estate.start();
    let login = "name=ana&password=a+long+enough+passphrase";
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, head, _) = http(&address, "POST", "/login", &form, login);
    assert_eq!(status, 303);
    let cookie = crate::access::cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_session="))
        .expect("a session");
    let (status, head, page) = http(&address, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    assert!(
        page.contains("<html") && page.contains("hx-get=\"/\""),
        "{page}"
    );
    assert_eq!(
        crate::access::header_of(&head, "vary").as_deref(),
        Some("HX-Request")
    );
    let (status, _, fragment) = http(
        &address,
        "GET",
        "/",
        &[("Cookie", &cookie), ("HX-Request", "true")],
        "",
    );
    assert_eq!(status, 200);
    assert!(
        !fragment.contains("<html")
            && fragment.contains("Open alerts")
            && !fragment.contains("Tier 1"),
        "the summary only: {fragment}"
    );
    // A login form posted from another site is refused.
    for origin in ["https://evil.example", "null"] {
        let foreign = [form[0], ("Origin", origin)];
        assert_eq!(http(&address, "POST", "/login", &foreign, login).0, 403);
    }
    // A form without its session's CSRF token is refused.
    let (status, _, _) = http(
        &address,
        "POST",
        "/alerts/1/ack",
        &[("Cookie", &cookie), form[0]],
        "csrf=forged",
    );
    assert_eq!(status, 403);
    // Without a session, pages lead to the login.
    let (status, head, _) = http(&address, "GET", "/alerts", &[], "");
    assert_eq!(status, 303);
    assert_eq!(
        crate::access::header_of(&head, "location").as_deref(),
        Some("/login")
    );
}

/// The session's CSRF token, as a page carries it in its forms.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with the CSRF token")
        .to_string()
}

/// An operator adds a maintenance window from the console and ends it;
/// both are recorded as theirs.
#[test]
fn maintenance_windows_are_added_and_ended_from_the_console() {
    let estate = Estate::new("");
    estate.user("ana", &[Role::Operator], &[]);
    let (_server, address, instance) = estate.start();
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let login = "name=ana&password=a+long+enough+passphrase";
    let (_, head, _) = http(&address, "POST", "/login", &[form], login);
    let cookie = crate::access::cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_session="))
        .expect("a session");
    let (status, _, page) = http(&address, "GET", "/maintenance", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    assert!(page.contains("Add a window"), "{page}");
    let csrf = csrf_of(&page);
    let now = jiff::Timestamp::now();
    let local = |t: jiff::Timestamp| {
        t.to_zoned(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%dT%H:%M")
            .to_string()
    };
    let body = format!(
        "csrf={csrf}&services=web&systems=&start={}&end={}&reason=patching+the+web+servers",
        local(now - jiff::SignedDuration::from_mins(1)),
        local(now + jiff::SignedDuration::from_hours(2)),
    );
    let (status, _, said) = http(
        &address,
        "POST",
        "/maintenance",
        &[("Cookie", &cookie), form],
        &body,
    );
    assert_eq!(status, 303, "{said}");
    let (_, windows) = call(&address, "GET", "/maintenance", &instance, &Value::Null);
    let added = windows
        .as_array()
        .and_then(|all| all.iter().find(|w| w["source"] == "added").cloned())
        .expect("the window");
    assert_eq!(added["active"], true, "{added}");
    assert_eq!(added["scope"]["services"], json!(["web"]));
    let id = added["id"].as_str().expect("id").to_string();
    let (_, _, page) = http(&address, "GET", "/maintenance", &[("Cookie", &cookie)], "");
    // The page escapes `/` in attributes as `&#x2f;` (minijinja's HTML
    // escaping); a browser reads it as `/`.
    let unescaped = page.replace("&#x2f;", "/");
    assert!(
        unescaped.contains(&format!("/maintenance/{id}/end")),
        "an End button: {page}"
    );
    let (status, _, _) = http(
        &address,
        "POST",
        &format!("/maintenance/{id}/end"),
        &[("Cookie", &cookie), form],
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 303);
    let (_, windows) = call(&address, "GET", "/maintenance", &instance, &Value::Null);
    // Ended: no longer active (ended windows leave the list).
    let still = windows
        .as_array()
        .expect("windows")
        .iter()
        .any(|w| w["id"] == id.as_str() && w["active"] == true);
    assert!(!still, "{windows}");
    let (_, entries) = call(&address, "GET", "/audit/entries", &instance, &Value::Null);
    let theirs = entries
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("maintenance."))
        })
        .all(|e| {
            e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("user:ana (ses_"))
        });
    assert!(theirs, "{entries}");
}

/// The estate's `web` service made tier 2 with a 1-day RPO whose only
/// system has been protected for 26 hours without a good backup (its
/// path does not exist): violated. The evidence is dated in the store
/// before the server starts, as if it had run that long.
fn with_a_violated_service(estate: &Estate) {
    let file = estate.data.join("catalog/catalog.toml");
    let catalog = std::fs::read_to_string(&file).expect("catalog");
    let catalog = catalog.replacen(
        "id = \"web\"\nowner = \"shop\"\ntier = 3\n",
        "id = \"web\"\nowner = \"shop\"\ntier = 2\nrpo = \"1d\"\nrto = \"4h\"\nmtd = \"2d\"\n",
        1,
    );
    // The payments service waits for a person once its files are back.
    let catalog = catalog.replacen(
        "[service.impact]",
        "[[service.recovery]]\ntype = \"checkpoint\"\nprompt = \"confirm the ledger opens in the accounting tool\"\n\n[service.impact]",
        1,
    );
    std::fs::write(&file, catalog).expect("write");
    let database = format!("sqlite://{}", estate.data.join("haven.db").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = haven_store::open(&database).await.expect("the store");
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(26);
        let state = haven_model::jobs::SetState::new("web-files", "default", since, "");
        store.put_set_state(&state).await.expect("seed");
    });
}

/// An operator sees the violated service first on the overview, runs a
/// drill from the console and opens its report, then confirms a recovery
/// run's checkpoint, which lets the run finish.
#[test]
fn an_operator_sees_the_violated_service_drills_and_confirms_a_checkpoint() {
    let estate = Estate::new("");
    with_a_violated_service(&estate);
    estate.user("ana", &[Role::Operator, Role::RestoreOperator], &[]);
    let (_server, address, instance) = estate.start();
    let path = "/systems/payments-files/run";
    assert_eq!(call(&address, "POST", path, &instance, &json!({})).0, 202);
    wait_for("the payments backup", || {
        let (_, jobs) = call(&address, "GET", "/jobs", &instance, &Value::Null);
        jobs.as_array().is_some_and(|j| {
            j.iter()
                .any(|j| j["system"] == "payments-files" && j["outcome"] == "success")
        })
    });
    wait_for("the violated system's alert", || {
        let (_, alerts) = call(&address, "GET", "/alerts", &instance, &Value::Null);
        alerts.as_array().is_some_and(|all| {
            all.iter().any(|a| {
                a["rule"] == "rpo-violated"
                    && a["summary"]
                        .as_str()
                        .is_some_and(|s| s.contains("web-files"))
            })
        })
    });
    let base = format!("http://{address}");
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let browser = driver.browser().await;
        log_in(&browser, &base, "ana").await;
        // The violated service comes first among those needing attention,
        // highlighted, its state in words.
        let first = browser
            .find(Locator::Css(
                "section[aria-labelledby='attention-heading'] li",
            ))
            .await
            .expect("a service needing attention");
        let class = first
            .attr("class")
            .await
            .expect("class")
            .unwrap_or_default();
        assert!(class.contains("state-violated"), "{class}");
        let said = first.text().await.expect("text");
        assert!(said.contains("web") && said.contains("violated"), "{said}");
        screenshot(&browser, "overview-violated").await;
        // Its page: what it needs, drawn, the violated system marked.
        first
            .find(Locator::Css("a"))
            .await
            .expect("its link")
            .click()
            .await
            .expect("open the service");
        let graph = browser
            .wait()
            .for_element(Locator::Css("svg[aria-label^='what web needs']"))
            .await
            .expect("the dependency graph");
        let boxes = graph.find_all(Locator::Css("rect")).await.expect("boxes");
        assert_eq!(boxes.len(), 2, "web and web-files");
        let drawn = graph.html(false).await.expect("svg");
        assert!(drawn.contains("system violated"), "{drawn}");
        screenshot(&browser, "service-violated").await;
        accessible(&browser, "/services/web").await;
        // Its alert, acknowledged from the alerts page.
        browser.goto(&format!("{base}/alerts")).await.expect("alerts");
        click(&browser, Locator::XPath("//tr[td[contains(., 'web-files')] and td[text()='open']]//button[text()='Acknowledge']"), "the violated system's open alert").await;
        browser
            .wait()
            .for_element(Locator::XPath(
                "//tr[td[contains(., 'web-files')] and td[text()='acknowledged']]",
            ))
            .await
            .expect("shown acknowledged");

        // A drill from the console, followed until its report.
        run_drill(&browser, &base, "system:payments-files").await;
        browser
            .wait()
            .for_element(Locator::Css("a[href='/drills/1']"))
            .await
            .expect("the drill listed once recorded")
            .click()
            .await
            .expect("open the report");
        browser
            .wait()
            .for_element(Locator::Css("figure.chart svg[role='img']"))
            .await
            .expect("the drill's timeline");
        let h1 = browser
            .find(Locator::Css("h1"))
            .await
            .expect("h1")
            .text()
            .await
            .expect("text");
        assert_eq!(h1, "Drill 1 of payments-files: PASS");
        let report = text(&browser).await;
        assert!(
            report.contains("Measured") && report.contains("restore"),
            "{report}"
        );
        screenshot(&browser, "drill-report").await;
        accessible(&browser, "/drills/1").await;
        // A drill of the whole service: its measured RTO on its page.
        run_drill(&browser, &base, "service:payments").await;
        browser
            .wait()
            .for_element(Locator::Css("a[href='/drills/2']"))
            .await
            .expect("the service drill's system drill recorded");
        browser
            .goto(&format!("{base}/services/payments"))
            .await
            .expect("the service");
        let page = text(&browser).await;
        assert!(
            page.contains("4h (MTD 1d)") && page.contains("in service drill 1 on"),
            "{page}"
        );

        // A recovery waits at its checkpoint; ana confirms it.
        let target = estate.ws.path("recovered");
        let body = json!({
            "selection": {"services": ["payments"]},
            "target": {"kind": "alternate", "dir": target.display().to_string()},
            "by": "test",
        });
        let (status, run) = call(&address, "POST", "/recoveries", &instance, &body);
        assert_eq!(status, 201, "{run}");
        let id = run["id"].as_i64().expect("the run's number");
        browser
            .goto(&format!("{base}/recoveries/{id}"))
            .await
            .expect("the run");
        browser
            .wait()
            .for_element(Locator::XPath("//button[text()='Confirm']"))
            .await
            .expect("the checkpoint waits for a person (the page refreshes)")
            .click()
            .await
            .expect("confirm");
        screenshot(&browser, "recovery-confirmed").await;
        accessible(&browser, "/recoveries/N").await;
        browser.close().await.expect("close");
    });
    wait_for("the run to finish once confirmed", || {
        let (_, runs) = call(&address, "GET", "/recoveries", &instance, &Value::Null);
        runs.as_array()
            .and_then(|r| r.first())
            .is_some_and(|r| r["state"] == "completed")
    });
    let (_, entries) = call(&address, "GET", "/audit/entries", &instance, &Value::Null);
    let confirmed = entries.as_array().expect("entries").iter().any(|e| {
        e["action"].as_str().is_some_and(|a| a.contains("confirm"))
            && e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("user:ana (ses_"))
    });
    assert!(confirmed, "the confirmation is ana's: {entries}");
    let drilled = entries.as_array().expect("entries").iter().any(|e| {
        e["action"] == "drill.run"
            && e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("user:ana (ses_"))
    });
    assert!(drilled, "the drill is ana's: {entries}");
}

/// A session's cookie after logging in as `name`.
fn session_of(address: &str, name: &str) -> String {
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let login = format!("name={name}&password=a+long+enough+passphrase");
    let (status, head, said) = http(address, "POST", "/login", &[form], &login);
    assert_eq!(status, 303, "{said}");
    crate::access::cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_session="))
        .expect("a session")
}

/// An admin adds a user and makes them a token from the console: the
/// secret is shown once (in a page no cache keeps) and opens the API;
/// revoked from the console, it no longer does; the user is disabled.
#[test]
fn an_admin_manages_users_and_tokens_from_the_console() {
    let estate = Estate::new("");
    estate.user("root-admin", &[Role::Admin], &[]);
    estate.user("ana", &[Role::Operator], &[]);
    let (_server, address, _) = estate.start();
    let cookie = session_of(&address, "root-admin");
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let (status, head, page) = http(&address, "GET", "/users", &[("Cookie", &cookie)], "");
    assert_eq!(status, 200);
    assert_eq!(
        crate::access::header_of(&head, "cache-control").as_deref(),
        Some("no-store")
    );
    assert!(
        page.contains("Add a user") && page.contains("Make a token"),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let post =
        |path: &str, body: &str| http(&address, "POST", path, &[("Cookie", &cookie), form], body);
    // Every form needs its session's token: without it, or with another,
    // nothing is made.
    for token in ["", "&csrf=forged"] {
        let (status, _, _) = post(
            "/tokens",
            &format!("user=root-admin&name=sneaky&roles=admin&expires=30d{token}"),
        );
        assert_eq!(status, 403);
    }
    // A weak password is refused, saying why.
    let (status, _, said) = post(
        "/users",
        &format!("csrf={csrf}&name=eve&password=eve&roles=auditor&teams="),
    );
    assert_eq!(status, 400, "{said}");
    let (status, _, said) = post(
        "/users",
        &format!("csrf={csrf}&name=eve&password=a+long+enough+passphrase&roles=auditor&teams="),
    );
    assert_eq!(status, 200, "{said}");
    assert!(said.contains("User eve added."), "{said}");
    let (status, head, said) = post(
        "/tokens",
        &format!("csrf={csrf}&user=eve&name=reports&roles=auditor&expires=30d"),
    );
    assert_eq!(status, 200, "{said}");
    assert_eq!(
        crate::access::header_of(&head, "cache-control").as_deref(),
        Some("no-store")
    );
    let secret = said
        .split("(keep it safe): ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret, once")
        .trim()
        .to_string();
    let (status, _) = call(&address, "GET", "/audit/entries", &secret, &Value::Null);
    assert_eq!(status, 200, "the auditor's token reads the audit log");
    // Shown once: the list never shows it again.
    let (_, _, page) = http(&address, "GET", "/users", &[("Cookie", &cookie)], "");
    assert!(!page.contains(&secret), "the secret is not shown again");
    assert!(
        !page.contains("(sneaky)"),
        "no token made without the form's token"
    );
    // Its row: `token tok_… (reports)`.
    let id = page
        .split(" (reports)")
        .next()
        .and_then(|before| before.rsplit("token ").next())
        .filter(|id| id.starts_with("tok_"))
        .expect("the token listed")
        .to_string();
    let (status, head, _) = post(&format!("/tokens/{id}/revoke"), &format!("csrf={csrf}"));
    assert_eq!(status, 303, "{head}");
    let (status, _) = call(&address, "GET", "/audit/entries", &secret, &Value::Null);
    assert_eq!(status, 401, "revoked");
    let (status, _, said) = post("/users/ana/disable", &format!("csrf={csrf}"));
    assert_eq!(status, 200, "{said}");
    assert!(said.contains("User ana disabled"), "{said}");
    let form = [form];
    let login = "name=ana&password=a+long+enough+passphrase";
    let (status, _, _) = http(&address, "POST", "/login", &form, login);
    assert_eq!(status, 401, "a disabled user cannot log in");
    // Eve's second factor, enrolled from the console: its seed is shown
    // once; from then on she logs in with her authenticator's code.
    let (status, _, said) = post("/users/eve/totp", &format!("csrf={csrf}"));
    assert_eq!(status, 200, "{said}");
    let seed = said
        .split("(shown only this once): ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the seed, once")
        .to_string();
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(&seed).expect("base32"))
        .build()
        .expect("totp");
    // (A login without the code is refused: the ops tests show it with a
    // clock they control, since each failure delays the next try.)
    let login = "name=eve&password=a+long+enough+passphrase";
    let code = totp.generate(jiff::Timestamp::now().as_second().unsigned_abs());
    let (status, head, said) = http(
        &address,
        "POST",
        "/login",
        &form,
        &format!("{login}&totp={code}"),
    );
    assert_eq!(status, 303, "{said}");
    let eve = crate::access::cookies_of(&head)
        .into_iter()
        .find(|c| c.starts_with("haven_session="))
        .expect("a session");
    // Not an admin: the page and its forms are refused.
    let (status, _, _) = http(&address, "GET", "/users", &[("Cookie", &eve)], "");
    assert_eq!(status, 403);
}
