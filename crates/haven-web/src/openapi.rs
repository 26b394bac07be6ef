//! The API's OpenAPI 3.1 document (`GET /api/openapi.json`), generated
//! from the route table itself ([`crate::access::ROUTES`]: every route,
//! its method, the permission it needs and where it acts) with `utoipa`'s
//! model, so the document cannot list a route the server lacks or miss
//! one it has (a test asks the server for every documented route).
//! Request bodies, query fields and answers are JSON Schemas of the
//! handlers' own types ([`crate::openapi_bodies`]); every error is the
//! one error shape, a component here.

use haven_model::access::Permission;
use haven_ops::access::permission_name;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, Required,
    ResponseBuilder,
};

use crate::access::{ROUTES, Reach};

/// The document as served: the route skeleton with every body typed.
pub fn document_json() -> serde_json::Value {
    let mut document = serde_json::to_value(document()).unwrap_or_default();
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    for (method, pattern, _, _) in ROUTES {
        let Some(bodies) = crate::openapi_bodies::bodies(method, pattern) else {
            continue;
        };
        let pointer = format!(
            "/paths/{}/{}",
            format!("/api/v1{pattern}")
                .replace('~', "~0")
                .replace('/', "~1"),
            method.to_ascii_lowercase()
        );
        let Some(operation) = document.pointer_mut(&pointer) else {
            continue;
        };
        let gated = crate::openapi_bodies::four_eyes(method, pattern);
        type_operation(operation, &bodies, gated, &mut generator);
    }
    let definitions = generator.take_definitions(true);
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        schemas.extend(definitions);
    }
    document
}

/// Put the route's typed bodies in its operation.
fn type_operation(
    operation: &mut serde_json::Value,
    bodies: &crate::openapi_bodies::Bodies,
    four_eyes: bool,
    generator: &mut schemars::SchemaGenerator,
) {
    use serde_json::json;
    let answer = (bodies.answer)(generator);
    if let Some(responses) = operation["responses"].as_object_mut() {
        let generic = responses.remove("2XX");
        let mut typed = generic.unwrap_or_else(|| json!({"description": "The answer"}));
        typed["content"]["application/json"]["schema"] = answer.to_value();
        responses.insert(bodies.status.to_string(), typed);
        if four_eyes {
            responses.insert(
                "202".into(),
                json!({
                    "description": "With four eyes on, the change waits for a second person: the error shape with the code `approval-required`, naming the request (docs/access.md)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }),
            );
        }
    }
    if let Some(request) = bodies.request {
        operation["requestBody"]["content"]["application/json"]["schema"] =
            request(generator).to_value();
        operation["requestBody"]["description"] = json!("A JSON document");
    } else if let Some(body) = operation.as_object_mut() {
        body.remove("requestBody");
    }
    if let Some(query) = bodies.query {
        let inline = inline_object(query, generator);
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut parameters = parameters;
        if let Some(properties) = inline["properties"].as_object() {
            for (name, schema) in properties {
                parameters.push(json!({
                    "name": name,
                    "in": "query",
                    "required": false,
                    "description": schema.get("description").cloned().unwrap_or(json!("")),
                    "schema": schema,
                }));
            }
        }
        operation["parameters"] = json!(parameters);
    }
}

/// A query type's fields, as an object schema whose properties are
/// themselves inline or references.
fn inline_object(
    maker: crate::openapi_bodies::Maker,
    generator: &mut schemars::SchemaGenerator,
) -> serde_json::Value {
    let schema = maker(generator).to_value();
    match schema.get("$ref").and_then(serde_json::Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            generator.definitions().get(name).cloned().unwrap_or(schema)
        }
        None => schema,
    }
}

/// The route skeleton: paths, parameters, security, the error shape.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for (method, pattern, needs, reach) in ROUTES {
        let path = format!("/api/v1{pattern}");
        paths.add_path_operation(
            &path,
            vec![http_method(method)],
            operation(method, pattern, *needs, *reach),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Haven API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Haven's HTTP API: every capability of the command line. Send a token as `Authorization: Bearer TOKEN` (the data dir's api-token, or a user's or automation's from `haven token create`), or a console session's cookie with `X-CSRF-Token` on changes. Every error is `{\"error\": {\"code\", \"message\", \"hint\"}}` with a stable code (docs/errors.md).",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components()))
        .security(Some([
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]))
        .build()
}

fn http_method(method: &str) -> HttpMethod {
    match method {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// One route's operation: its permission and reach, its path
/// parameters, a JSON body for a POST, and the error answers.
fn operation(method: &str, pattern: &str, needs: Permission, reach: Reach) -> OperationBuilder {
    let tag = pattern
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("api")
        .to_string();
    let who = match reach {
        Reach::Owned => format!(
            "Needs the {} permission (a service owner: on its own services and systems).",
            permission_name(needs)
        ),
        Reach::Instance => format!("Needs the {} permission.", permission_name(needs)),
    };
    let mut op = OperationBuilder::new()
        .operation_id(Some(operation_id(method, pattern)))
        .tag(tag)
        .summary(Some(format!("{method} {pattern}")))
        .description(Some(who))
        .response(
            "2XX",
            ResponseBuilder::new()
                .description("The answer, a JSON document (docs/server.md)")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                        .build(),
                )
                .build(),
        )
        .response("default", error_answer());
    for name in pattern
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        let kind = if matches!(name, "id" | "step")
            && !pattern.starts_with("/maintenance")
            && !pattern.starts_with("/tokens")
            && !pattern.starts_with("/channels")
        {
            Type::Integer
        } else {
            Type::String
        };
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(kind))),
        );
    }
    if method == "POST" {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some("A JSON object (docs/server.md lists each route's fields); some routes take none"))
                .content("application/json", ContentBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Object))).build())
                .build(),
        ));
    }
    op
}

/// `get_recoveries_id_steps_step_decide`.
fn operation_id(method: &str, pattern: &str) -> String {
    let words: Vec<String> = pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(['{', '}']).replace('-', "_"))
        .collect();
    format!("{}_{}", method.to_ascii_lowercase(), words.join("_"))
}

fn error_answer() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("An error: its code decides the HTTP status (docs/errors.md)")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
}

fn components() -> utoipa::openapi::Components {
    let text = || ObjectBuilder::new().schema_type(Type::String);
    let body = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "code",
            text().description(Some("A stable code (docs/errors.md)")),
        )
        .required("code")
        .property(
            "message",
            text().description(Some("What went wrong, for a person")),
        )
        .required("message")
        .property("hint", text().description(Some("How to fix it")));
    let error = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("error", body)
        .required("error");
    ComponentsBuilder::new()
        .schema("Error", error)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("haven_session"))),
        )
        .build()
}
