//! Query arithmetic: `red dress + summer - floral` adds and subtracts the normalised embeddings of
//! its terms, and `2:term` weights one. `+` and `-` are operators only with spaces around them, so
//! `t-shirt` and `c++` stay words. Only the engine parses queries, for the page and the CLI alike.

/// One term of a query and its signed weight.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    /// The text to encode.
    pub(crate) text: String,
    /// Signed weight (`-` makes it negative).
    pub(crate) weight: f32,
}

/// Splits a query into weighted terms. A plain query is one term of weight 1.
pub(crate) fn parse(query: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut sign = 1f32;
    let mut current: Vec<&str> = Vec::new();
    let mut flush = |words: &mut Vec<&str>, sign: f32| {
        if words.is_empty() {
            return;
        }
        let text = words.join(" ");
        words.clear();
        let (weight, text) = split_weight(&text);
        if !text.is_empty() && weight != 0.0 {
            terms.push(Term {
                text: text.to_string(),
                weight: sign * weight,
            });
        }
    };
    for word in query.split_whitespace() {
        match word {
            "+" | "-" => {
                flush(&mut current, sign);
                sign = if word == "-" { -1.0 } else { 1.0 };
            }
            _ => current.push(word),
        }
    }
    flush(&mut current, sign);
    terms
}

/// The words keyword search looks for: the query itself when it is plain, else the text of its
/// added terms (a `- floral` term is not something to match).
pub fn keyword_text(query: &str) -> String {
    let terms = parse(query);
    match terms.as_slice() {
        [one] if one.weight == 1.0 && one.text == query.trim() => query.to_string(),
        _ => {
            let mut words: Vec<&str> = terms
                .iter()
                .filter(|t| t.weight > 0.0)
                .map(|t| t.text.as_str())
                .collect();
            // A trailing space ends the word being typed; keep it so.
            if query.ends_with(char::is_whitespace) {
                words.push("");
            }
            words.join(" ")
        }
    }
}

/// The largest weight of a term: a larger one (`99999999999999999999999999999999999999999:red`,
/// which overflows `f32`) counts as this, so a query always gives finite scores.
pub(crate) const MAX_WEIGHT: f32 = 100.0;

/// `2:red` → (2, "red"); `0.5: red` → (0.5, "red"); anything else has weight 1. Weights are at
/// most [`MAX_WEIGHT`].
fn split_weight(text: &str) -> (f32, &str) {
    if let Some((num, rest)) = text.split_once(':') {
        let num = num.trim();
        let numeric = !num.is_empty() && num.chars().all(|c| c.is_ascii_digit() || c == '.');
        if numeric && let Ok(w) = num.parse::<f32>() {
            return (w.min(MAX_WEIGHT), rest.trim());
        }
    }
    (1.0, text.trim())
}

/// `Σ weight · normalise(embedding)`, normalised: the vector to rank with.
pub(crate) fn combine(parts: &[(f32, Vec<f32>)]) -> Option<Vec<f32>> {
    let dim = parts.first()?.1.len();
    let mut sum = vec![0f32; dim];
    for (w, e) in parts {
        for (s, v) in sum.iter_mut().zip(vitrine_index::normalize(e)) {
            *s += w * v;
        }
    }
    let out = vitrine_index::normalize(&sum);
    out.iter().any(|v| *v != 0.0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str, weight: f32) -> Term {
        Term {
            text: text.into(),
            weight,
        }
    }

    #[test]
    fn plain_queries_are_one_term() {
        assert_eq!(
            parse("a fluffy pink cat on a tv"),
            [t("a fluffy pink cat on a tv", 1.0)]
        );
        assert_eq!(
            parse("t-shirt c++ 50%-off"),
            [t("t-shirt c++ 50%-off", 1.0)]
        );
        assert!(parse("   ").is_empty());
    }

    #[test]
    fn plus_minus_and_weights() {
        assert_eq!(
            parse("red dress + summer - floral"),
            [t("red dress", 1.0), t("summer", 1.0), t("floral", -1.0)]
        );
        assert_eq!(
            parse("2:red dress - 0.5: floral"),
            [t("red dress", 2.0), t("floral", -0.5)]
        );
        assert_eq!(parse("- floral"), [t("floral", -1.0)]);
        assert_eq!(parse("time: 10:30"), [t("time: 10:30", 1.0)]);
    }

    #[test]
    fn weights_too_large_for_a_float_are_capped() {
        let huge = format!("{}:red", "9".repeat(60));
        assert_eq!(parse(&huge), [t("red", MAX_WEIGHT)]);
        let v = combine(&[(MAX_WEIGHT, vec![1.0, 2.0]), (-1.0, vec![0.5, 0.0])]).unwrap();
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn combining_opposites_cancels() {
        let a = vec![1.0, 0.0];
        assert_eq!(combine(&[(1.0, a.clone()), (-1.0, a.clone())]), None);
        let v = combine(&[(1.0, vec![2.0, 0.0]), (1.0, vec![0.0, 5.0])]).unwrap();
        assert!((v[0] - v[1]).abs() < 1e-6 && (v[0] - 0.70710677).abs() < 1e-6);
    }
}
