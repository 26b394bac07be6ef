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

/// What a service needs, all the way down, and who needs it: the part of
/// the graph a service's page draws.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Neighbourhood {
    /// Every service, system and vendor it needs (directly or through
    /// others), the service itself first; each with its depth (the
    /// longest chain of dependencies from the service to it).
    pub nodes: Vec<Node>,
    /// `(from, to)`: `from` depends on `to`, both among the nodes.
    pub edges: Vec<(String, String)>,
    /// The services that depend on it directly.
    pub dependents: Vec<String>,
}

/// One thing in a service's neighbourhood.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// `service`, `system` or `vendor`.
    pub kind: String,
    /// How it reads (`Web shop (tier 1)`, `shop-db [database-mysql]`).
    pub label: String,
    /// The longest chain of dependencies from the service to it (the
    /// service: 0).
    pub depth: usize,
}

/// The neighbourhood of `service`, or `None` when there is no such
/// service. A cycle (which `check` reports) is walked once.
pub fn neighbourhood(catalog: &Catalog, service: &str) -> Option<Neighbourhood> {
    catalog.service(service)?;
    let needs = |id: &str| -> Vec<String> {
        catalog.service(id).map_or_else(Vec::new, |s| {
            s.depends_on
                .iter()
                .filter(|d| catalog.kind_of(&d.value).is_some())
                .map(|d| d.value.clone())
                .collect()
        })
    };
    // Longest-path depths by relaxing along the edges; a node's depth
    // never exceeds the number of nodes, which ends a cycle.
    let mut depth: std::collections::BTreeMap<String, usize> = Default::default();
    let mut edges = Vec::new();
    let mut queue = vec![(service.to_string(), 0usize)];
    let limit = catalog.services.len() + catalog.systems.len() + catalog.vendors.len();
    while let Some((id, d)) = queue.pop() {
        if d > limit || depth.get(&id).is_some_and(|&known| known >= d) {
            continue;
        }
        let first = !depth.contains_key(&id);
        depth.insert(id.clone(), d);
        for next in needs(&id) {
            if first {
                edges.push((id.clone(), next.clone()));
            }
            queue.push((next, d + 1));
        }
    }
    let labels: std::collections::HashMap<&str, (&str, String)> = nodes(catalog)
        .into_iter()
        .map(|(kind, id, label)| (id, (kind, label)))
        .collect();
    let mut nodes: Vec<Node> = depth
        .into_iter()
        .filter_map(|(id, depth)| {
            let (kind, label) = labels.get(id.as_str())?.clone();
            Some(Node {
                id,
                kind: kind.to_string(),
                label,
                depth,
            })
        })
        .collect();
    nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then_with(|| a.id.cmp(&b.id)));
    let dependents = catalog
        .services
        .iter()
        .filter(|s| s.depends_on.iter().any(|d| d.value == service))
        .map(|s| s.id.value.to_string())
        .collect();
    Some(Neighbourhood {
        nodes,
        edges,
        dependents,
    })
}

/// The whole graph: every service, system and vendor (depth 0), and
/// every dependency between them.
pub fn whole(catalog: &Catalog) -> (Vec<Node>, Vec<(String, String)>) {
    let nodes = nodes(catalog)
        .into_iter()
        .map(|(kind, id, label)| Node {
            id: id.to_string(),
            kind: kind.to_string(),
            label,
            depth: 0,
        })
        .collect();
    let edges = edges(catalog)
        .into_iter()
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .collect();
    (nodes, edges)
}
