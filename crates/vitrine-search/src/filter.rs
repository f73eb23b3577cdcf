//! Selections (zero-shot facet labels, feed values, numeric ranges), the items they allow, and
//! counts per value over a query's candidates. Values of one group are alternatives, groups must
//! all hold; each group is counted with the other groups applied and not itself, so choosing one
//! brand still shows how many items the other brands would give.

use vitrine_index::filters::{Counts, FilterKind, RangeCount, RangeSelection};
use vitrine_index::{ItemTable, Manifest};

use crate::{Error, Result};

/// What the shopper chose: facet labels `(facet, label)` and filters `(key, value or range)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Zero-shot facet labels.
    pub facets: Vec<(String, String)>,
    /// Feed filters: a value (`brand`, `Acme`) or a range (`price`, `10-50`).
    pub filters: Vec<(String, String)>,
}

/// At most this many names are listed in a message.
const LISTED: usize = 20;

/// `a, b, c` (the first [`LISTED`], then `…`), or `none`.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let mut out = names
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED {
        out.push_str(", …");
    }
    out
}

enum Test<'a> {
    Codes {
        codes: &'a [u16],
        wanted: Vec<u16>,
    },
    Range {
        numbers: &'a [Option<f64>],
        range: RangeSelection,
    },
}

/// One selected group, ready to test items.
struct Group<'a> {
    /// `facet:NAME` or `filter:KEY`.
    owner: String,
    test: Test<'a>,
}

impl Group<'_> {
    fn allows(&self, item: usize) -> bool {
        match &self.test {
            Test::Codes { codes, wanted } => codes.get(item).is_some_and(|c| wanted.contains(c)),
            Test::Range { numbers, range } => numbers
                .get(item)
                .copied()
                .flatten()
                .is_some_and(|v| range.contains(v)),
        }
    }
}

/// A selection checked against a site.
pub(crate) struct Compiled<'a> {
    groups: Vec<Group<'a>>,
    manifest: &'a Manifest,
    items: &'a ItemTable,
}

impl<'a> Compiled<'a> {
    /// Checks `selection` against the manifest: unknown facets, labels, filters, values and
    /// malformed ranges are errors.
    pub(crate) fn new(
        manifest: &'a Manifest,
        items: &'a ItemTable,
        selection: &Selection,
    ) -> Result<Self> {
        let mut groups = Vec::new();
        for facet in &manifest.facets {
            let mut wanted = Vec::new();
            for (_, label) in selection.facets.iter().filter(|(f, _)| *f == facet.name) {
                let i = facet
                    .labels
                    .iter()
                    .position(|l| l == label)
                    .ok_or_else(|| {
                        Error::Selection(format!("facet {:?} has no label {label:?}", facet.name))
                    })?;
                wanted.push(i as u16);
            }
            if !wanted.is_empty() {
                let codes = items.facets.get(&facet.name).map_or(&[][..], Vec::as_slice);
                groups.push(Group {
                    owner: format!("facet:{}", facet.name),
                    test: Test::Codes { codes, wanted },
                });
            }
        }
        if let Some((f, _)) = selection
            .facets
            .iter()
            .find(|(f, _)| !manifest.facets.iter().any(|x| x.name == *f))
        {
            let names: Vec<String> = manifest.facets.iter().map(|f| f.name.clone()).collect();
            return Err(Error::Selection(format!(
                "there is no facet {f:?} (this site's facets: {})",
                list(&names)
            )));
        }
        for filter in &manifest.filters {
            let chosen: Vec<&String> = selection
                .filters
                .iter()
                .filter(|(k, _)| *k == filter.key)
                .map(|(_, v)| v)
                .collect();
            if chosen.is_empty() {
                continue;
            }
            let test = match &filter.kind {
                FilterKind::Values { values, .. } => {
                    let mut wanted = Vec::new();
                    for v in chosen {
                        let i = values.iter().position(|x| x == v).ok_or_else(|| {
                            Error::Selection(format!(
                                "filter {:?} has no value {v:?} (its values: {})",
                                filter.key,
                                list(values)
                            ))
                        })?;
                        // Codes are 1-based; 0 means the item has no value.
                        wanted.push(i as u16 + 1);
                    }
                    let codes = items.values.get(&filter.key).map_or(&[][..], Vec::as_slice);
                    Test::Codes { codes, wanted }
                }
                FilterKind::Range { .. } => {
                    let [one] = chosen.as_slice() else {
                        return Err(Error::Selection(format!(
                            "filter {:?} takes one range",
                            filter.key
                        )));
                    };
                    let range = RangeSelection::parse(one).ok_or_else(|| {
                        Error::Selection(format!(
                            "filter {:?}: {one:?} is not a range such as 10-50, 10- or -50",
                            filter.key
                        ))
                    })?;
                    let numbers = items
                        .numbers
                        .get(&filter.key)
                        .map_or(&[][..], Vec::as_slice);
                    Test::Range { numbers, range }
                }
            };
            groups.push(Group {
                owner: format!("filter:{}", filter.key),
                test,
            });
        }
        if let Some((k, _)) = selection
            .filters
            .iter()
            .find(|(k, _)| !manifest.filters.iter().any(|f| f.key == *k))
        {
            let keys: Vec<String> = manifest.filters.iter().map(|f| f.key.clone()).collect();
            return Err(Error::Selection(format!(
                "there is no filter {k:?} (this site's filters: {})",
                list(&keys)
            )));
        }
        Ok(Self {
            groups,
            manifest,
            items,
        })
    }

    /// Whether anything is selected.
    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Whether every group allows `item`.
    pub(crate) fn allows(&self, item: u32) -> bool {
        self.groups.iter().all(|g| g.allows(item as usize))
    }

    /// The mask of allowed items, or `None` when nothing is selected.
    pub(crate) fn mask(&self) -> Option<Vec<bool>> {
        (!self.is_empty()).then(|| (0..self.items.count).map(|i| self.allows(i)).collect())
    }

    /// Counts over `candidates` (catalogue positions): per facet label and filter value, the
    /// candidates that the other groups allow; per range, the span of values present.
    pub(crate) fn counts(&self, candidates: &[u32]) -> Counts {
        let own = |owner: String| self.groups.iter().position(|g| g.owner == owner);
        let except = |skip: Option<usize>, item: u32| {
            self.groups
                .iter()
                .enumerate()
                .all(|(g, group)| Some(g) == skip || group.allows(item as usize))
        };
        let mut counts = Counts {
            total: candidates.iter().filter(|&&i| self.allows(i)).count() as u32,
            ..Counts::default()
        };
        for f in &self.manifest.facets {
            let skip = own(format!("facet:{}", f.name));
            let mut per = vec![0u32; f.labels.len()];
            if let Some(codes) = self.items.facets.get(&f.name) {
                for &i in candidates.iter().filter(|&&i| except(skip, i)) {
                    if let Some(c) = per.get_mut(usize::from(codes[i as usize])) {
                        *c += 1;
                    }
                }
            }
            counts.facets.insert(f.name.clone(), per);
        }
        for f in &self.manifest.filters {
            let skip = own(format!("filter:{}", f.key));
            match &f.kind {
                FilterKind::Values { values, .. } => {
                    let mut per = vec![0u32; values.len()];
                    if let Some(codes) = self.items.values.get(&f.key) {
                        for &i in candidates.iter().filter(|&&i| except(skip, i)) {
                            let c = usize::from(codes[i as usize]);
                            if let Some(n) = c.checked_sub(1).and_then(|c| per.get_mut(c)) {
                                *n += 1;
                            }
                        }
                    }
                    counts.values.insert(f.key.clone(), per);
                }
                FilterKind::Range { .. } => {
                    let mut span = RangeCount::default();
                    if let Some(numbers) = self.items.numbers.get(&f.key) {
                        for &i in candidates.iter().filter(|&&i| except(skip, i)) {
                            if let Some(v) = numbers[i as usize] {
                                span.add(v);
                            }
                        }
                    }
                    counts.ranges.insert(f.key.clone(), span);
                }
            }
        }
        counts
    }
}
