//! The dependency graph as Graphviz DOT or Mermaid text.

use std::fmt::Write;

use super::Catalog;

fn nodes(catalog: &Catalog) -> Vec<(&'static str, &str, String)> {
    let mut out = Vec::new();
    for s in &catalog.services {
        out.push((
            "service",
            s.id.value.as_str(),
            format!("{} (tier {})", s.name, s.tier.value),
        ));
    }
    for s in &catalog.systems {
        out.push((
            "system",
            s.id.value.as_str(),
            format!("{} [{}]", s.id.value, s.kind.value),
        ));
    }
    for v in &catalog.vendors {
        let name = v.name.clone().unwrap_or_else(|| v.id.value.clone());
        out.push(("vendor", v.id.value.as_str(), format!("{name} (vendor)")));
    }
    out
}

fn edges(catalog: &Catalog) -> Vec<(&str, &str)> {
    catalog
        .services
        .iter()
        .flat_map(|s| {
            s.depends_on
                .iter()
                .filter(|d| catalog.kind_of(&d.value).is_some())
                .map(move |d| (s.id.value.as_str(), d.value.as_str()))
        })
        .collect()
}

/// Graphviz DOT: services are boxes, systems ellipses, vendors hexagons;
/// an edge points from a service to what it depends on.
pub fn dot(catalog: &Catalog) -> String {
    let mut out = String::from("digraph dependencies {\n  rankdir=LR;\n");
    for (kind, id, label) in nodes(catalog) {
        let shape = match kind {
            "service" => "box",
            "system" => "ellipse",
            _ => "hexagon",
        };
        let _ = writeln!(out, "  {id:?} [label={label:?}, shape={shape}];");
    }
    for (from, to) in edges(catalog) {
        let _ = writeln!(out, "  {from:?} -> {to:?};");
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart (renders in GitHub and GitLab Markdown).
pub fn mermaid(catalog: &Catalog) -> String {
    // Mermaid ids allow letters, digits and underscores.
    let key = |id: &str| {
        let safe: String = id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("n_{safe}")
    };
    let mut out = String::from("flowchart LR\n");
    for (kind, id, label) in nodes(catalog) {
        let label = label.replace('"', "'");
        let node = match kind {
            "service" => format!("[\"{label}\"]"),
            "system" => format!("([\"{label}\"])"),
            _ => format!("{{{{\"{label}\"}}}}"),
        };
        let _ = writeln!(out, "  {}{node}", key(id));
    }
    for (from, to) in edges(catalog) {
        let _ = writeln!(out, "  {} --> {}", key(from), key(to));
    }
    out
}
