//! Care-email templates end to end: `tiercare preview` renders from the workspace's templates
//! and store (recommendations included), `tiercare check` catches template mistakes, and
//! customer data cannot inject headers or markup.

use crate::common;

use common::Workspace;
use mail_parser::{MessageParser, MimeHeaders};

const CUSTOMERS: &str = "\
customer_id,name,email,region,owner,consent_email
A,Ann Archer,ann@example.com,North,alice,true
B,Ben Baker,ben@example.com,North,alice,true
C,Cy <script>alert(1)</script>,cy@example.com,South,,true
D,Dee Dunn,,South,,true
";

/// A: bread, butter. B: bread, butter, jam. C: bread, cheese. So A's best recommendation is
/// jam (B shares two products with A), then cheese (C shares one).
const ORDERS: &str = "\
order_id,customer_id,ordered_at,sku,description,quantity,unit_price
O1,A,2025-09-01,bread,Sourdough loaf,1,4.5
O1,A,2025-09-01,butter,Salted butter,1,3
O2,B,2025-09-02,bread,Sourdough loaf,2,4.5
O2,B,2025-09-02,butter,Salted butter,1,3
O3,B,2025-09-03,jam,Strawberry jam,1,5
O4,C,2025-09-04,bread,Sourdough loaf,1,4.5
O4,C,2025-09-04,cheese,Aged cheddar,1,7
";

const MANAGERS: &str = "manager_id,name,email\nalice,Alice Chen,alice@example.com\n";

fn shop() -> Workspace {
    let ws = Workspace::new();
    let managers = ws.write("managers.csv", MANAGERS);
    let customers = ws.write("customers.csv", CUSTOMERS);
    let orders = ws.write("orders.csv", ORDERS);
    ws.run(&["import", "managers", &managers]).assert_code(0);
    ws.run(&["import", "customers", &customers]).assert_code(0);
    ws.run(&["import", "orders", &orders]).assert_code(0);
    ws.run(&["assess", "--at", "2025-10-01"]).assert_code(0);
    ws
}

#[test]
fn preview_prints_a_multipart_email_a_mail_parser_reads_with_recommendations() {
    let ws = shop();
    let run = ws.run(&["preview", "care", "--customer", "A", "--at", "2025-10-01"]);
    run.assert_code(0);
    let raw = run.stdout.replace('\n', "\r\n");
    let message = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a standard parser reads the preview");
    assert_eq!(message.subject(), Some("A quick hello from Customer Care"));
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("ann@example.com"));
    assert_eq!(to.name(), Some("Ann Archer"));
    assert!(
        message
            .content_type()
            .is_some_and(|ct| ct.ctype() == "multipart" && ct.subtype() == Some("alternative")),
        "{}",
        run.stdout
    );
    let text = message.body_text(0).unwrap().replace("\r\n", "\n");
    let html = message.body_html(0).unwrap().replace("\r\n", "\n");
    assert!(text.starts_with("Dear Ann Archer,\n"), "{text}");
    // The documented co-occurrence ranking: jam (score 2), cheese (score 1).
    let jam = text.find("  - Strawberry jam").expect("jam recommended");
    let cheese = text.find("  - Aged cheddar").expect("cheese recommended");
    assert!(jam < cheese, "{text}");
    assert!(
        !text.contains("Sourdough"),
        "never what A already bought: {text}"
    );
    assert!(html.contains("<li>Strawberry jam</li>"), "{html}");

    // --json carries the template's parts.
    let json = ws
        .run(&[
            "preview",
            "care",
            "--customer",
            "A",
            "--at",
            "2025-10-01",
            "--json",
        ])
        .json();
    assert_eq!(json["to"], "ann@example.com");
    assert!(text.starts_with(json["rendered"]["text"].as_str().unwrap()));
    // As `send` sends it: List-Unsubscribe and the unsubscribe line after the template's text.
    assert!(
        run.stdout
            .contains("List-Unsubscribe: <mailto:care@example.com"),
        "{}",
        run.stdout
    );
    assert!(
        text.contains("\n-- \nTo unsubscribe from these emails"),
        "{text}"
    );
}

#[test]
fn customer_data_is_escaped_in_html_literal_in_text_and_never_a_header() {
    let ws = shop();
    ws.write(
        "templates/hello.eml.j2",
        "subject: Hello {{ customer.name }}\n--- text\nName: {{ customer.name }}\n--- html\n<p>{{ customer.name }}</p>\n",
    );
    ws.run(&["check"]).assert_code(0);
    let run = ws.run(&["preview", "hello", "--customer", "C", "--json"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(
        json["rendered"]["text"],
        "Name: Cy <script>alert(1)</script>\n"
    );
    assert_eq!(
        json["rendered"]["html"],
        "<p>Cy &lt;script&gt;alert(1)&lt;&#x2f;script&gt;</p>\n"
    );
    // A name with a line break (not importable from a file, but stored by another tool) puts
    // no header on the wire.
    rusqlite::Connection::open(ws.path("tiercare.db"))
        .unwrap()
        .execute(
            "UPDATE customers SET name = 'Bob\r\nBcc: x@example.com' WHERE external_id = 'C'",
            [],
        )
        .unwrap();
    let json = ws
        .run(&["preview", "hello", "--customer", "C", "--json"])
        .json();
    assert_eq!(json["rendered"]["subject"], "Hello Bob Bcc: x@example.com");
    let raw = json["message"].as_str().unwrap();
    let headers = &raw[..raw.find("\r\n\r\n").unwrap()];
    assert!(
        !headers
            .lines()
            .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
        "{headers}"
    );
    let message = MessageParser::default().parse(raw.as_bytes()).unwrap();
    assert!(message.bcc().is_none());
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("cy@example.com")
    );
}

#[test]
fn a_customer_without_an_address_gets_the_parts_and_a_warning() {
    let ws = shop();
    let run = ws.run(&["preview", "birthday", "--customer", "D"]);
    run.assert_code(0);
    run.assert_stderr_contains("no email address");
    run.assert_stdout_contains("Subject: Happy birthday, Dee Dunn!");
    run.assert_stdout_contains("--- html");
}

#[test]
fn check_reports_template_mistakes_at_file_line_col() {
    let ws = shop();
    ws.run(&["check"]).assert_code(0);
    ws.write(
        "templates/care.eml.j2",
        "subject: Hi\n--- text\nDear {{ customer.nmae }},\n--- html\n<p>{{ tier.lable }}</p>\n",
    );
    std::fs::remove_file(ws.path("templates/offer.html.j2")).unwrap();
    std::fs::remove_file(ws.path("templates/offer.txt.j2")).unwrap();
    let run = ws.run(&["check"]);
    run.assert_code(1);
    run.assert_stderr_contains(
        "templates/care.eml.j2:3:9: error: undefined variable `customer.nmae`",
    );
    run.assert_stderr_contains("did you mean `customer.name`?");
    run.assert_stderr_contains("templates/care.eml.j2:5:7: error: undefined variable `tier.lable`");
    run.assert_stderr_contains(
        "error: follow-up `b-targeted-offer` uses template `offer`, which does not exist",
    );
    // A template with errors is not rendered by preview either.
    let preview = ws.run(&["preview", "care", "--customer", "A"]);
    preview.assert_code(2);
    preview.assert_stderr_contains("templates/care.eml.j2:3:9");
    let json = ws.run(&["check", "--json"]).json();
    assert_eq!(json["errors"], 3, "{json}");
}

#[test]
fn preview_refuses_unknown_templates_and_customers() {
    let ws = shop();
    let run = ws.run(&["preview", "nope", "--customer", "A"]);
    run.assert_code(2);
    run.assert_stderr_contains("there is no usable template `nope`");
    run.assert_stderr_contains("`care`");
    let run = ws.run(&["preview", "care", "--customer", "Z9"]);
    run.assert_code(2);
    run.assert_stderr_contains("no customer with id 'Z9'");
}

#[test]
fn recorded_follow_ups_queue_emails_rendered_from_the_templates() {
    let ws = shop();
    ws.write(
        "rules/followups.yaml",
        "followups:\n  - id: daily-care\n    tiers: [A, B, C]\n    cron: \"0 10 * * *\"\n    email: { template: care }\n",
    );
    // A broken template is reported, and only follow-ups that use it are skipped.
    ws.write(
        "templates/broken.eml.j2",
        "subject: {{ nope }}\n--- text\nx\n",
    );
    let run = ws.run(&[
        "followups",
        "record",
        "--from",
        "2025-10-01",
        "--until",
        "2025-10-02",
    ]);
    run.assert_code(0);
    run.assert_stderr_contains("templates/broken.eml.j2:1:13: error: undefined variable `nope`");
    // A, B and C have addresses and consent; D has no address.
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox WHERE template = 'care'"),
        3
    );
    let (text, html): (String, String) = ws.query_one(
        "SELECT o.body_text, o.body_html FROM outbox o JOIN customers c ON c.id = o.customer_id \
         WHERE c.external_id = 'A'",
    );
    assert!(text.starts_with("Dear Ann Archer,\n"), "{text}");
    assert!(
        text.contains("  - Strawberry jam\n  - Aged cheddar\n"),
        "{text}"
    );
    assert!(html.contains("<li>Strawberry jam</li>"), "{html}");
    let c_html: String = ws.query_one(
        "SELECT o.body_html FROM outbox o JOIN customers c ON c.id = o.customer_id \
         WHERE c.external_id = 'C'",
    );
    assert!(c_html.contains("Cy &lt;script&gt;"), "{c_html}");
    assert!(!c_html.contains("<script>"), "{c_html}");
}
