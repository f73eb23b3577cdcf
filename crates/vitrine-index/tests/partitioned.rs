//! The partitioned index as documentation: one list ranks exactly as the flat scan, probing every
//! list is exact, the probe curve grows to 1, filters plan enough lists, and the root and list
//! files round-trip and are refused when damaged.

use vitrine_index::lists::{ListIndex, NeedLists, Probes, QueryKind, Root};
use vitrine_index::partition::{Centroids, Metric, Partitioned, partition, probe_curve, train};
use vitrine_index::{Quantizer, Vectors, normalize};

const DIM: usize = 16;

/// `groups` clusters of `per` points around random directions, unit length, interleaved.
fn clustered(groups: usize, per: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let centres: Vec<Vec<f32>> = (0..groups)
        .map(|_| normalize(&(0..DIM).map(|_| next()).collect::<Vec<_>>()))
        .collect();
    (0..groups * per)
        .map(|i| {
            let c = &centres[i % groups];
            normalize(&c.iter().map(|x| x + 0.15 * next()).collect::<Vec<_>>())
        })
        .collect()
}

fn build(data: &[Vec<f32>], lists: usize) -> (Partitioned, ListIndex) {
    let unit: Vec<f32> = data.iter().flatten().copied().collect();
    let plain = Metric::plain(DIM);
    let means = train(&unit, DIM, lists, 7, &plain);
    let p = partition(
        &unit,
        DIM,
        Centroids::from_means(&means, DIM, plain).unwrap(),
        Quantizer::fit(&unit, DIM),
    );
    let mut index = ListIndex::new(Root::from_bytes(&p.root.to_bytes()).unwrap());
    for (j, f) in p.files.iter().enumerate() {
        index.add_list(j, f).unwrap();
    }
    (p, index)
}

#[test]
fn one_list_ranks_exactly_as_the_flat_scan() {
    let data = clustered(5, 40, 1);
    let flat = Vectors::quantize(&data).unwrap();
    let (p, index) = build(&data, 1);
    assert_eq!(p.order, (0..200).collect::<Vec<u32>>());
    // Equal order; scores equal up to the float noise of normalising the input twice.
    let same = |a: Vec<vitrine_index::Hit>, b: Vec<vitrine_index::Hit>| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.index, y.index);
            assert!((x.score - y.score).abs() < 1e-6, "{x:?} {y:?}");
        }
    };
    for q in [&data[3], &data[77], &data[150]] {
        same(
            index.search(q, QueryKind::Text, 20, None).unwrap(),
            flat.search(&flat.query(q), 20, None),
        );
    }
    same(index.like(42, 10, None).unwrap(), flat.like(42, 10, None));
}

#[test]
fn probing_every_list_is_exact_and_the_curve_reaches_one() {
    let data = clustered(8, 50, 2);
    let (p, mut index) = build(&data, 8);
    let mut root = p.root.clone();
    assert_eq!(root.lists(), 8);
    assert_eq!(root.count(), 400);
    // Renumbered list by list: each list's items are contiguous and hold input rows.
    let mut seen = p.order.clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..400).collect::<Vec<u32>>());
    let texts = vec![data[5].clone(), data[301].clone()];
    let curve = probe_curve(&index, &[0, 50, 100, 399], &texts, 10);
    assert_eq!(curve.image.len(), 8);
    assert!(curve.image.windows(2).all(|w| w[0] <= w[1]));
    let probes = |image, text| Probes { image, text };
    assert_eq!(curve.at(probes(8, 8)), (1.0, 1.0));
    // Well separated clusters: one list already holds each query's neighbours.
    assert!(curve.at(probes(1, 1)).0 >= 0.85, "{:?}", curve);
    let chosen = curve.smallest(0.95).unwrap();
    assert!(chosen.image <= 2 && chosen.text <= 2, "{chosen:?}");
    assert!(curve.smallest(1.0).is_some());
    root.set_probes(probes(2, 8));
    let all = ListIndex::new(root.clone());
    let text = all.search(&data[0], QueryKind::Text, 5, None);
    assert!(matches!(text, Err(NeedLists(l)) if l.len() == 8));
    let image = all.search(&data[0], QueryKind::Image, 5, None);
    assert!(matches!(image, Err(NeedLists(l)) if l.len() == 2));
    // With every list probed, partitioned search is the exact scan.
    let mut exact = ListIndex::new(root);
    for (j, f) in p.files.iter().enumerate() {
        exact.add_list(j, f).unwrap();
    }
    let every: Vec<usize> = (0..8).collect();
    let q = &data[123];
    assert_eq!(
        exact.search(q, QueryKind::Text, 15, None).unwrap(),
        exact.scan(q, &every, 15, None).unwrap()
    );
    index.add_list(0, &p.files[0]).unwrap();
    assert_eq!(index.root().plan(q, QueryKind::Text, 10, None).len(), 8);
}

#[test]
fn a_filter_plans_lists_until_they_hold_enough_allowed_items() {
    let data = clustered(6, 30, 3);
    let (p, _) = build(&data, 6);
    let mut root = p.root.clone();
    root.set_probes(Probes { image: 1, text: 1 });
    // Only items of two lists are allowed: the plan skips the others and takes both.
    let (a, na) = root.range(1);
    let (b, nb) = root.range(4);
    let allowed: Vec<bool> = (0..180u32)
        .map(|i| (a..a + na).contains(&i) || (b..b + nb).contains(&i))
        .collect();
    let plan = root.plan(
        &data[0],
        QueryKind::Text,
        (na + nb) as usize,
        Some(&allowed),
    );
    let mut sorted = plan.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 4]);
    assert_eq!(
        root.plan(&data[0], QueryKind::Image, 1, Some(&allowed))
            .len(),
        1
    );
}

#[test]
fn damaged_roots_and_lists_are_refused() {
    let data = clustered(4, 20, 4);
    let (p, _) = build(&data, 4);
    let bytes = p.root.to_bytes();
    assert_eq!(Root::from_bytes(&bytes).unwrap(), p.root);
    let err = |b: &[u8]| Root::from_bytes(b).unwrap_err().to_string();
    assert!(
        err(&bytes[..40]).contains("cannot hold"),
        "{}",
        err(&bytes[..40])
    );
    let mut wrong = bytes.clone();
    wrong[0] = b'X';
    assert!(err(&wrong).contains("magic"));
    let mut sizes = bytes.clone();
    sizes[36 + 12 * DIM] ^= 1;
    assert!(err(&sizes).contains("add up"), "{}", err(&sizes));
    let mut index = ListIndex::new(p.root.clone());
    let short = &p.files[2][..p.files[2].len() - 1];
    assert!(index.add_list(2, short).is_err());
    assert!(index.add_list(9, &p.files[2]).is_err());
    assert!(index.add_list(2, &p.files[2]).is_ok());
    let f = p.root.list_file(2);
    f.check(&p.files[2]).unwrap();
    assert!(f.path.starts_with("lists/list."));
}

#[test]
fn lists_shaped_for_the_text_direction_hold_a_text_querys_best_items_in_fewer_lists() {
    // Text queries share one direction far from the images (CLIP's modality gap), so their
    // best items are the ones furthest along it, whatever their group.
    let data = clustered(6, 100, 5);
    let gap = normalize(&[
        1.0, -1.0, 0.5, 0.0, 0.25, -0.5, 1.0, 0.0, -0.25, 0.5, 0.0, 1.0, -1.0, 0.5, 0.0, 0.25,
    ]);
    let texts: Vec<Vec<f32>> = (0..60)
        .map(|i| {
            let near = &data[i * 7 % data.len()];
            normalize(
                &near
                    .iter()
                    .zip(&gap)
                    .map(|(x, g)| 0.3 * x + g)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let unit: Vec<f32> = data.iter().flatten().copied().collect();
    let scanned = |metric: Metric| {
        let means = train(&unit, DIM, 12, 7, &metric);
        let centroids = Centroids::from_means(&means, DIM, metric).unwrap();
        let p = partition(&unit, DIM, centroids, Quantizer::fit(&unit, DIM));
        let mut index = ListIndex::new(p.root.clone());
        for (j, f) in p.files.iter().enumerate() {
            index.add_list(j, f).unwrap();
        }
        let chosen = probe_curve(&index, &[], &texts[..30], 10)
            .smallest(0.95)
            .unwrap();
        // Items scanned by the other half of the queries at that probe count.
        let root = index.root();
        texts[30..]
            .iter()
            .map(|t| {
                let lists = root.ranked_lists(t);
                let n: u32 = lists[..chosen.text as usize]
                    .iter()
                    .map(|&j| root.range(j).1)
                    .sum();
                n as usize
            })
            .sum::<usize>()
    };
    let plain = scanned(Metric::plain(DIM));
    let shaped = scanned(Metric::for_texts(&texts[..30], DIM));
    assert!(
        shaped * 3 < plain * 2,
        "text metric scans {shaped} items, plain {plain}"
    );
}
