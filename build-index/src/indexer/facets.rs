//! Zero-shot facets, the origin notebook's `classify`: every item gets the label whose prompt
//! ("a photo of a {} product") is most probable under CLIP (softmax of `logit_scale` × cosine), so
//! the page can offer filter chips without anyone tagging by hand.

use anyhow::{Result, bail};
use vitrine_index::{Facet, FacetValue, normalize};

/// The template used when `--facet-template` is not given.
pub(crate) const DEFAULT_TEMPLATE: &str = "a photo of a {}";

/// One `--facet name=a,b,c` with its template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FacetSpec {
    pub(crate) name: String,
    pub(crate) labels: Vec<String>,
    pub(crate) template: String,
}

/// Pairs `--facet` values with `--facet-template` values by position; with fewer templates
/// than facets the last template applies to the rest. Errors are usage errors.
pub(crate) fn parse_specs(facets: &[String], templates: &[String]) -> Result<Vec<FacetSpec>> {
    if templates.len() > facets.len() {
        bail!(
            "{} --facet-template values for {} --facet values",
            templates.len(),
            facets.len()
        );
    }
    for t in templates {
        if t.matches("{}").count() != 1 {
            bail!("--facet-template {t:?} must contain {{}} exactly once, where the label goes");
        }
    }
    let mut specs: Vec<FacetSpec> = Vec::new();
    for (i, f) in facets.iter().enumerate() {
        let Some((name, labels)) = f.split_once('=') else {
            bail!("--facet {f:?}: expected NAME=label,label,… (e.g. color=black,white,red)");
        };
        let name = name.trim().to_string();
        let labels: Vec<String> = labels
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if name.is_empty() || labels.len() < 2 {
            bail!("--facet {f:?}: needs a name and at least two labels");
        }
        if specs.iter().any(|s| s.name == name) {
            bail!("--facet {name} is given twice");
        }
        let template = templates
            .get(i)
            .or(templates.last())
            .cloned()
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        specs.push(FacetSpec {
            name,
            labels,
            template,
        });
    }
    Ok(specs)
}

/// A facet's manifest entry, and each item's label index and value.
pub(crate) type Classified = (Facet, Vec<(u16, FacetValue)>);

/// Each facet's label prompts ("a photo of a red product"), in spec order, label order.
pub(crate) fn prompts(specs: &[FacetSpec]) -> Vec<Vec<String>> {
    specs
        .iter()
        .map(|s| {
            s.labels
                .iter()
                .map(|l| s.template.replacen("{}", l, 1))
                .collect()
        })
        .collect()
}

/// For each facet: its manifest entry, and each item's (label index, probability), given the
/// encoded label prompts of each facet (as [`prompts`] lists them) and CLIP's `logit_scale`.
pub(crate) fn classify(
    specs: &[FacetSpec],
    encoded: &[Vec<Vec<f32>>],
    scale: f32,
    items: &[Vec<f32>],
) -> Vec<Classified> {
    let mut out = Vec::new();
    for (spec, labels) in specs.iter().zip(encoded) {
        let labels: Vec<Vec<f32>> = labels.iter().map(|v| normalize(v)).collect();
        let mut counts = vec![0u32; labels.len()];
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let item = normalize(item);
            let logits: Vec<f32> = labels
                .iter()
                .map(|l| scale * l.iter().zip(&item).map(|(a, b)| a * b).sum::<f32>())
                .collect();
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f32 = exp.iter().sum();
            // The first of equal maxima wins, so results do not depend on float noise in ties.
            let best = (0..exp.len()).fold(0, |b, i| if exp[i] > exp[b] { i } else { b });
            counts[best] += 1;
            values.push((
                best as u16,
                FacetValue {
                    label: spec.labels[best].clone(),
                    probability: exp[best] / total,
                },
            ));
        }
        let facet = Facet {
            name: spec.name.clone(),
            template: spec.template.clone(),
            labels: spec.labels.clone(),
            counts,
        };
        out.push((facet, values));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_pair_with_templates_and_bad_ones_are_usage_errors() {
        let f = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let specs = parse_specs(
            &f(&["color=red, blue", "kind=mug,plate"]),
            &f(&["a {} thing"]),
        )
        .unwrap();
        assert_eq!(specs[0].labels, ["red", "blue"]);
        assert_eq!(specs[1].template, "a {} thing");
        assert_eq!(
            parse_specs(&f(&["c=a,b"]), &[]).unwrap()[0].template,
            DEFAULT_TEMPLATE
        );
        assert!(parse_specs(&f(&["color"]), &[]).is_err());
        assert!(parse_specs(&f(&["color=red"]), &[]).is_err());
        assert!(parse_specs(&f(&["c=a,b"]), &f(&["no placeholder"])).is_err());
        assert!(parse_specs(&f(&["c=a,b", "c=d,e"]), &[]).is_err());
    }
}
