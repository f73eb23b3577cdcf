//! The partitioned index as documentation: one list ranks exactly as the flat scan, probing every
//! list is exact, the probe curve grows to 1, a query loads its groups and then its lists,
//! filters plan enough lists (for the results shown, not the fused window), a rebuild keeps the
//! list files and ranks as lists written afresh (scattered changes in patches beside their lists:
//! a golden root holds them), and the root, list and group files round-trip and are refused when
//! damaged.

mod common;

use common::golden;
use vitrine_index::extend::extend;
use vitrine_index::lists::{ListIndex, NeedFiles, Probes, QueryKind, Root};
use vitrine_index::partition::{self, Centroids, Metric, Partitioned, partition, train};
use vitrine_index::probing::Sample;
use vitrine_index::{FileRef, Quantizer, Vectors, normalize};

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
    )
    .unwrap();
    let index = loaded(&p, Root::from_bytes(&p.root.to_bytes()).unwrap());
    (p, index)
}

/// `root` with every list and group of `p` loaded.
fn loaded(p: &Partitioned, root: Root) -> ListIndex {
    let mut index = ListIndex::new(root);
    for (j, (_, bytes)) in p.site_files().into_iter().enumerate() {
        index.add_file(j, bytes).unwrap();
    }
    index
}

/// Probes `lists` lists within `groups` groups for both kinds.
fn probes(groups: u32, image: u32, text: u32) -> Probes {
    Probes {
        image,
        text,
        ..Probes::counts(groups, 0)
    }
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
    // √8 ≈ 3 groups; the curve has a row per group count, each growing to its groups' lists.
    let groups = root.groups() as u32;
    assert_eq!(groups, 3);
    let curve = Sample::new(&index, &[0, 50, 100, 399], &texts, 10).curve(&index);
    assert_eq!((curve.image.len(), curve.image[2].len()), (3, 8));
    assert!(curve.image[2].windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(curve.at(probes(groups, 8, 8)), (1.0, 1.0));
    // Well separated clusters: one list already holds each query's neighbours.
    assert!(curve.at(probes(1, 1, 1)).0 >= 0.85, "{:?}", curve);
    // Byte costs decide between more groups and more lists; either way few lists.
    let chosen = curve.cheapest(0.95, 8).unwrap();
    assert!(chosen.image <= 2 && chosen.text <= 2, "{chosen:?}");
    assert!(curve.cheapest(1.0, 8).is_some());
    assert_eq!(curve.cheapest(1.01, 8), None);
    // What a query fetches grows with what it probes; probing everything fetches every file.
    assert!(
        curve
            .text_bytes
            .iter()
            .all(|row| row.windows(2).all(|w| w[0] <= w[1]))
    );
    let every: usize = p.site_files().iter().map(|(_, b)| b.len()).sum();
    assert_eq!(curve.text_bytes[2][7], every as f64);
    root.set_probes(probes(groups, 2, 8));
    // A query first needs its groups (numbered after the lists), then its lists.
    let mut fresh = ListIndex::new(root.clone());
    let Err(NeedFiles(mut needed)) = fresh.search(&data[0], QueryKind::Text, 5, None) else {
        panic!("no group is loaded yet");
    };
    needed.sort_unstable();
    assert_eq!(needed, [8, 9, 10]);
    for (j, (_, bytes)) in p.site_files().into_iter().enumerate().skip(8) {
        fresh.add_file(j, bytes).unwrap();
    }
    let text = fresh.search(&data[0], QueryKind::Text, 5, None);
    assert!(matches!(text, Err(NeedFiles(l)) if l.len() == 8));
    let image = fresh.search(&data[0], QueryKind::Image, 5, None);
    assert!(matches!(image, Err(NeedFiles(l)) if l.len() == 2));
    // With every list probed, partitioned search is the exact scan.
    let exact = loaded(&p, root);
    let every: Vec<usize> = (0..8).collect();
    let q = &data[123];
    assert_eq!(
        exact.search(q, QueryKind::Text, 15, None).unwrap(),
        exact.scan(q, &every, 15, None).unwrap()
    );
    index.add_file(0, &p.files[0]).unwrap();
    assert_eq!(index.plan(q, QueryKind::Text, 10, None).unwrap().len(), 8);
}

#[test]
fn a_query_fetches_only_the_groups_it_ranks_and_lists_within_them() {
    let data = clustered(40, 20, 9);
    let (p, index) = build(&data, 64);
    let mut root = p.root.clone();
    assert_eq!((root.lists(), root.groups()), (64, 8));
    root.set_probes(probes(2, 3, 3));
    let mut fresh = ListIndex::new(root.clone());
    let q = &data[17];
    let Err(NeedFiles(groups)) = fresh.plan(q, QueryKind::Text, 10, None) else {
        panic!("a fresh index has no group loaded");
    };
    assert_eq!(groups.len(), 2);
    assert!(groups.iter().all(|&j| j >= 64), "{groups:?}");
    let files = p.site_files();
    for &j in &groups {
        fresh.add_file(j, files[j].1).unwrap();
    }
    let lists = fresh.plan(q, QueryKind::Text, 10, None).unwrap();
    assert_eq!(lists.len(), 3);
    // The lists come from the loaded groups, nearest centroid first, as the full ranking orders
    // them.
    let in_groups = |j: &usize| groups.contains(&(64 + root.group_of(*j)));
    assert!(lists.iter().all(in_groups), "{lists:?} outside {groups:?}");
    let all: Vec<usize> = (0..8).collect();
    let full: Vec<usize> = index.ranked_lists(q, &all).unwrap();
    let expected: Vec<usize> = full.into_iter().filter(in_groups).take(3).collect();
    assert_eq!(lists, expected);
    // The centroids come back whole from the group files (what a rebuild keeps).
    let group_files: Vec<Vec<u8>> = p.groups.clone();
    let centroids = root.centroids(&group_files).unwrap();
    let again = partition::partition(
        &data.iter().flatten().copied().collect::<Vec<f32>>(),
        DIM,
        centroids,
        root.quantizer().clone(),
    )
    .unwrap();
    assert_eq!(again.root.to_bytes(), p.root.to_bytes());
    assert_eq!((again.files, again.groups), (p.files, p.groups));
}

#[test]
fn a_gap_spares_lists_when_a_querys_nearest_list_stands_out() {
    // Eight tight clusters on eight axes, 50 points each.
    let noise = clustered(1, 400, 11);
    let data: Vec<Vec<f32>> = noise
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let axis = (0..DIM).map(|d| f32::from(d == i % 8) * 4.0);
            normalize(&axis.zip(n).map(|(a, x)| a + x).collect::<Vec<f32>>())
        })
        .collect();
    // One list per cluster, around its mean.
    let means: Vec<f32> = (0..8)
        .flat_map(|c| {
            let members = data.iter().skip(c).step_by(8);
            let sum = members.fold(vec![0f32; DIM], |s, v| {
                s.iter().zip(v).map(|(a, b)| a + b).collect()
            });
            normalize(&sum)
        })
        .collect();
    let unit: Vec<f32> = data.iter().flatten().copied().collect();
    let centroids = Centroids::from_means(&means, DIM, Metric::plain(DIM)).unwrap();
    let p = partition(&unit, DIM, centroids, Quantizer::fit(&unit, DIM)).unwrap();
    let index = loaded(&p, p.root.clone());
    let groups = p.root.groups() as u32;
    // Queries inside a cluster find their neighbours in one list; queries between two
    // clusters need both lists. A list count alone must serve the harder ones.
    let inside: Vec<Vec<f32>> = (0..12).map(|i| data[i * 31].clone()).collect();
    let between: Vec<Vec<f32>> = (0..12)
        .map(|i| {
            let (a, b) = (
                &means[i % 8 * DIM..][..DIM],
                &means[(i + 3) % 8 * DIM..][..DIM],
            );
            normalize(&a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<f32>>())
        })
        .collect();
    let texts: Vec<Vec<f32>> = inside.iter().chain(&between).cloned().collect();
    let sample = Sample::new(&index, &[0, 50, 100, 399], &texts, 10);
    let counts = sample.curve(&index).cheapest(0.95, 8).unwrap();
    assert!(counts.text >= 2, "{counts:?}");
    let tuned = sample.tune(&index, counts, 0.95, 8);
    assert!(tuned.text.recall >= 0.95, "{tuned:?}");
    assert!(tuned.probes.text_gap < Probes::NO_GAP, "{tuned:?}");
    assert!(tuned.text.lists < f64::from(counts.text), "{tuned:?}");
    // The gap written in the root makes the page's plan stop early where the build measured.
    let mut root = p.root.clone();
    root.set_probes(tuned.probes);
    let again = loaded(&p, Root::from_bytes(&root.to_bytes()).unwrap());
    assert_eq!(again.root().probes(), tuned.probes);
    let planned = |q: &Vec<f32>| again.plan(q, QueryKind::Text, 10, None).unwrap().len();
    assert!(inside.iter().all(|q| planned(q) == 1));
    assert!(between.iter().map(planned).sum::<usize>() > between.len());
    // Without a gap, every query probes the list count: tuning never fetches more.
    root.set_probes(probes(groups, counts.image, counts.text));
    let counted = loaded(&p, root);
    let plan = counted.plan(&inside[0], QueryKind::Text, 10, None).unwrap();
    assert_eq!(plan.len(), counts.text as usize);
    // A target no probing reaches keeps the counts it was given, with no gap.
    let kept = sample.tune(&index, counts, 1.01, 8);
    assert_eq!(kept.probes, counts);
}

#[test]
fn a_filter_plans_lists_until_they_hold_enough_allowed_items() {
    let data = clustered(6, 30, 3);
    let (p, _) = build(&data, 6);
    let mut root = p.root.clone();
    root.set_probes(probes(1, 1, 1));
    let index = loaded(&p, root.clone());
    // Only items of two lists are allowed: the plan skips the others and takes both.
    let (a, na) = root.range(1);
    let (b, nb) = root.range(4);
    let allowed: Vec<bool> = (0..180u32)
        .map(|i| (a..a + na).contains(&i) || (b..b + nb).contains(&i))
        .collect();
    let plan = index
        .plan(
            &data[0],
            QueryKind::Text,
            (na + nb) as usize,
            Some(&allowed),
        )
        .unwrap();
    let mut sorted = plan.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 4]);
    assert_eq!(
        index
            .plan(&data[0], QueryKind::Image, 1, Some(&allowed))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_filtered_window_fetches_the_lists_for_the_results_shown_not_for_the_whole_window() {
    let data = clustered(6, 30, 3);
    let (p, _) = build(&data, 6);
    let mut root = p.root.clone();
    root.set_probes(probes(1, 1, 1));
    let index = loaded(&p, root);
    // A third of every list is allowed: 60 items, 10 a list.
    let allowed: Vec<bool> = (0..180).map(|i| i % 3 == 0).collect();
    let q = &data[0];
    let every = index.plan(q, QueryKind::Text, 60, Some(&allowed)).unwrap();
    assert_eq!(every.len(), 6, "a window of 60 needs every list");
    let nearest = index.plan(q, QueryKind::Text, 5, Some(&allowed)).unwrap();
    assert_eq!(nearest.len(), 1, "five results shown need one list");
    let window = index
        .search_window(q, QueryKind::Text, 5, 60, Some(&allowed))
        .unwrap();
    let held = index.root().allowed_in(nearest[0], Some(&allowed));
    assert_eq!(
        window.len(),
        held,
        "the window holds what its one list allows"
    );
    let exact = index
        .search(q, QueryKind::Text, 60, Some(&allowed))
        .unwrap();
    let ids = |h: &[vitrine_index::Hit]| h.iter().map(|h| h.index).collect::<Vec<_>>();
    assert_eq!(
        ids(&window[..5]),
        ids(&exact[..5]),
        "the five shown are the exact five"
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
        err(&bytes[..64]).contains("cannot hold"),
        "{}",
        err(&bytes[..64])
    );
    // As many patch lists as lists leave no base list.
    let mut patches = bytes.clone();
    patches[60..64].copy_from_slice(&4u32.to_le_bytes());
    assert!(err(&patches).contains("cannot hold"), "{}", err(&patches));
    let mut wrong = bytes.clone();
    wrong[0] = b'X';
    assert!(err(&wrong).contains("magic"));
    let mut sizes = bytes.clone();
    sizes[64 + 20 * DIM] ^= 1;
    assert!(err(&sizes).contains("add up"), "{}", err(&sizes));
    let mut version = bytes.clone();
    version[4] = 1;
    assert!(
        err(&version).contains("rebuild the index"),
        "{}",
        err(&version)
    );
    let mut group = bytes.clone();
    group[64 + 20 * DIM + 4 * 4] = 7;
    assert!(err(&group).contains("group"), "{}", err(&group));
    // The text gap (header bytes 52..56) beyond any cosine difference.
    let mut gap = bytes.clone();
    gap[52..56].copy_from_slice(&3f32.to_le_bytes());
    assert!(err(&gap).contains("gaps"), "{}", err(&gap));
    let mut index = ListIndex::new(p.root.clone());
    let short = &p.files[2][..p.files[2].len() - 1];
    assert!(index.add_file(2, short).is_err());
    assert!(index.add_file(9, &p.files[2]).is_err());
    assert!(index.add_file(2, &p.files[2]).is_ok());
    // √4 = 2 groups after the 4 lists; a list's bytes are no group.
    assert!(index.add_file(4, &p.files[2]).is_err());
    assert!(index.add_file(4, &p.groups[0]).is_ok());
    let f = p.root.file(2);
    f.check(&p.files[2]).unwrap();
    assert!(f.path.starts_with("lists/list."));
    let g = p.root.file(5);
    g.check(&p.groups[1]).unwrap();
    assert!(g.path.starts_with("lists/group."));
    // The root keeps the hash a file's name carries (16 digits) and checks the bytes against it.
    assert_eq!(f.sha256.len(), 16);
    let mut flipped = p.files[2].clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(
        f.check(&flipped)
            .unwrap_err()
            .to_string()
            .contains("SHA-256")
    );
    let short = FileRef {
        sha256: f.sha256[..8].to_string(),
        ..f
    };
    assert!(
        short.check(&p.files[2]).is_err(),
        "fewer digits than a name's"
    );
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
        let p = partition(&unit, DIM, centroids, Quantizer::fit(&unit, DIM)).unwrap();
        let index = loaded(&p, p.root.clone());
        let all: Vec<usize> = (0..p.root.groups()).collect();
        // Every group ranked: the lists a text query needs, as without groups.
        let curve = Sample::new(&index, &[], &texts[..30], 10).curve(&index);
        let every_group = curve.text.last().unwrap();
        let probes = every_group.iter().position(|&r| r >= 0.95).unwrap() + 1;
        // Items scanned by the other half of the queries at that probe count.
        let root = index.root();
        texts[30..]
            .iter()
            .map(|t| {
                let lists = index.ranked_lists(t, &all).unwrap();
                let n: u32 = lists[..probes].iter().map(|&j| root.range(j).1).sum();
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

/// LEB128 varints, as a root stores its removed rows' gaps.
fn varints(values: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        let mut v = v;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out
}

/// Every item `index` holds with its score for `q` (probing every list), by input position.
fn all_scores(index: &ListIndex, p: &Partitioned, q: &[f32]) -> Vec<(u32, u32)> {
    let all = index.root().count() as usize;
    let lists: Vec<usize> = (0..index.root().lists()).collect();
    let mut out: Vec<(u32, u32)> = (index.scan(q, &lists, all, None).unwrap())
        .iter()
        .map(|h| (p.order[h.index as usize], h.score.to_bits()))
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn a_rebuild_keeps_every_list_file_and_scores_as_lists_written_afresh() {
    let data = clustered(8, 40, 6);
    let (before, _) = build(&data, 8);
    // Two items leave and seven arrive, a new collection (one new direction): every list file
    // stays, the root skips two rows and the collection is one new list.
    let mut after = data.clone();
    after.remove(100);
    after.remove(10);
    after.extend(clustered(1, 7, 99));
    let unit: Vec<f32> = after.iter().flatten().copied().collect();
    let centroids = before.root.centroids(&before.groups).unwrap();
    let rebuilt = extend(&unit, DIM, &before.root, &centroids, before.files.clone()).unwrap();
    assert_eq!(
        rebuilt.lists.files[..8],
        before.files[..],
        "every list file is kept"
    );
    assert_eq!((rebuilt.kept, rebuilt.removed, rebuilt.added), (318, 2, 7));
    assert_eq!(
        (rebuilt.added_lists, rebuilt.patched, rebuilt.rewritten),
        (1, 0, 0)
    );
    let p = &rebuilt.lists;
    let root = Root::from_bytes(&p.root.to_bytes()).unwrap();
    assert_eq!((root.lists(), root.count(), root.removed()), (9, 325, 2));
    let changed_groups = (p.groups.iter())
        .filter(|g| !before.groups.contains(g))
        .count();
    assert_eq!(
        changed_groups, 1,
        "the group that gains the new list changes"
    );
    // The removed rows are never scored: probing every list scores each input once, exactly as
    // lists written afresh under the same centroids and int8 scale do.
    let index = loaded(p, root.clone());
    let fresh = partition(
        &unit,
        DIM,
        centroids.clone(),
        before.root.quantizer().clone(),
    )
    .unwrap();
    let fresh_index = loaded(&fresh, fresh.root.clone());
    for q in [&after[0], &after[99], &after[320], &data[10]] {
        let scores = all_scores(&index, p, q);
        assert_eq!(scores.len(), 325);
        assert_eq!(scores, all_scores(&fresh_index, &fresh, q));
    }
    // Items are numbered as the root says: the live rows of the kept lists, then the new list.
    for item in [0u32, 37, 200, 324] {
        let input = p.order[item as usize] as usize;
        let q = before.root.quantizer();
        let codes = q.encode(&unit[input * DIM..(input + 1) * DIM]);
        let decoded = q.encode(&index.decode(item).unwrap());
        assert_eq!(decoded, codes, "item {item} is input {input}");
    }
    assert!(
        p.order[318..].iter().all(|&i| i >= 318),
        "the collection comes last"
    );
    // The same inputs again change nothing; a second rebuild keeps the first one's removed rows.
    let centroids = root.centroids(&p.groups).unwrap();
    let again = extend(&unit, DIM, &root, &centroids, p.files.clone()).unwrap();
    assert_eq!(again.lists.root.to_bytes(), root.to_bytes());
    assert_eq!(
        (again.lists.files, again.lists.groups),
        (p.files.clone(), p.groups.clone())
    );
    assert_eq!((again.kept, again.removed, again.added), (325, 0, 0));
    let fewer = &unit[..300 * DIM];
    let third = extend(fewer, DIM, &root, &centroids, p.files.clone()).unwrap();
    assert_eq!(third.lists.root.removed(), 2 + 25);
    assert!((third.removed_share() - 27.0 / 327.0).abs() < 1e-9);
    // The removed rows are varint gaps after the file hashes.
    let removed: Vec<u32> = (0..9)
        .flat_map(|j| {
            let first: u32 = (0..j).map(|l| root.rows(l)).sum();
            root.removed_in(j)
                .map(move |r| first + r)
                .collect::<Vec<_>>()
        })
        .collect();
    let bytes = root.to_bytes();
    let at = 64 + 20 * DIM + 4 * 9 + 2 * 9 + 8 * (9 + root.groups());
    let gaps = varints(&[removed[0], removed[1] - removed[0] - 1]);
    assert_eq!(bytes[at..at + gaps.len()], gaps);
    // A removed row past the rows is refused.
    let past = varints(&[removed[0], 400]);
    let mut bytes = [&bytes[..at], &past, &bytes[at + gaps.len()..]].concat();
    let err = Root::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("removed rows"), "{err}");
    // Bytes ending inside a varint: two continuation bytes where two rows were due.
    bytes.truncate(at);
    bytes.extend([0x80, 0x80]);
    let err = Root::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("not rows below"), "{err}");
}

#[test]
fn changes_scattered_over_the_lists_go_to_patches_beside_them_and_every_list_file_stays() {
    // New draws around the clusters' own centres (the same seed, more items per cluster); item
    // `i` sits in cluster `i % 8`.
    let more = clustered(8, 44, 6);
    let data = more[..320].to_vec();
    let (before, _) = build(&data, 8);
    let mut after = data.clone();
    // Items 0..4 of clusters 0..4 are replaced by new draws around the same centres.
    after[..4].clone_from_slice(&more[320..324]);
    let unit: Vec<f32> = after.iter().flatten().copied().collect();
    let centroids = before.root.centroids(&before.groups).unwrap();
    let rebuilt = extend(&unit, DIM, &before.root, &centroids, before.files.clone()).unwrap();
    // Four items of four clusters fit no list of their own: each goes to a patch beside its
    // cluster's list (k-means put some clusters together); the replaced rows are skipped and
    // every list file and group file stays.
    assert_eq!(
        (rebuilt.added_lists, rebuilt.scattered, rebuilt.rewritten),
        (0, 4, 0)
    );
    let patched = rebuilt.patched;
    assert!((1..=4).contains(&patched), "{patched}");
    let p = &rebuilt.lists;
    // The root with patches, byte for byte: their rows, base lists and hashes after the lists'.
    golden("vectors-root-patched.bin", &p.root.to_bytes());
    let root = Root::from_bytes(&p.root.to_bytes()).unwrap();
    assert_eq!(root, p.root);
    assert_eq!(
        (
            root.lists(),
            root.base_lists(),
            root.count(),
            root.removed()
        ),
        (8 + patched, 8, 320, 4)
    );
    assert_eq!(p.files[..8], before.files[..], "every list file is kept");
    assert_eq!(p.groups, before.groups, "no group file changes");
    // A root whose patch names no base list is refused.
    let mut bytes = root.to_bytes();
    let at = 64 + 20 * DIM + 4 * (8 + patched) + 2 * 8;
    bytes[at..at + 4].copy_from_slice(&8u32.to_le_bytes());
    let err = Root::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("patch's base list"), "{err}");
    // A query probing a patched list scans its patch too, and finds the new item there.
    let index = loaded(p, root.clone());
    let new_item = (p.order.iter()).position(|&i| i == 0).unwrap() as u32;
    let patch = root.list_of(new_item);
    assert!(patch >= 8, "the new item is in a patch");
    let base = root.base_of(patch);
    assert_eq!(root.patches_of(base), [patch as u32]);
    let planned = index.plan(&after[0], QueryKind::Image, 10, None).unwrap();
    let at = planned.iter().position(|&j| j == base).unwrap();
    assert_eq!(planned[at + 1], patch, "the patch follows its list");
    let hits = index.search(&after[0], QueryKind::Image, 1, None).unwrap();
    assert_eq!(hits[0].index, new_item);
    // Probing every list scores each input once, exactly as lists written afresh do.
    let fresh = partition(&unit, DIM, centroids, before.root.quantizer().clone()).unwrap();
    let fresh_index = loaded(&fresh, fresh.root.clone());
    for q in [&after[3], &after[200], &data[2]] {
        assert_eq!(
            all_scores(&index, p, q),
            all_scores(&fresh_index, &fresh, q)
        );
    }

    // A second scattered change near the same list replaces its patch (one per list, holding
    // the first patch's live rows too); the other lists and patches stay.
    after[8] = more[328].clone();
    let unit: Vec<f32> = after.iter().flatten().copied().collect();
    let centroids = root.centroids(&p.groups).unwrap();
    let again = extend(&unit, DIM, &root, &centroids, p.files.clone()).unwrap();
    let q = &again.lists;
    assert_eq!((again.patched, again.rewritten, again.kept), (1, 0, 319));
    assert_eq!(q.root.lists(), 8 + patched);
    assert_eq!(q.files[..8], before.files[..], "every list file is kept");
    let patch_of = |r: &Root, j: usize| r.patches_of(j).to_vec();
    let holder = q.root.base_of(
        q.root
            .list_of((q.order.iter()).position(|&i| i == 8).unwrap() as u32),
    );
    assert_eq!(holder, base, "item 8 sits in item 0's cluster");
    let new_patch = patch_of(&q.root, base)[0] as usize;
    let had = root.range(patch).1;
    assert_eq!(
        q.root.range(new_patch).1,
        had + 1,
        "one patch holds the new items"
    );
    let kept_patches = (8..q.root.lists())
        .filter(|&j| p.files.contains(&q.files[j]))
        .count();
    assert_eq!(kept_patches, patched - 1, "the other patches are kept");

    // A patch outgrowing a quarter of its list's live rows is folded in: the list is rewritten.
    let (first, n) = root.range(base);
    let inputs = (first..first + n).map(|i| p.order[i as usize]);
    let leaving: Vec<u32> = inputs.filter(|&i| i != 8).skip(4).collect();
    let fewer: Vec<f32> = (0..320u32)
        .filter(|i| !leaving.contains(i))
        .flat_map(|i| after[i as usize].clone())
        .collect();
    let folded = extend(&fewer, DIM, &root, &centroids, p.files.clone()).unwrap();
    assert_eq!((folded.rewritten, folded.patched), (1, 0));
    let r = &folded.lists.root;
    assert!(r.patches_of(base).is_empty());
    assert_eq!((r.removed_in(base).count(), r.rows(base)), (0, 4 + had + 1));
    assert_ne!(folded.lists.files[base], before.files[base]);
    // So is one whose list's own items leave, with no new item joining.
    let inputs = (first..first + n).map(|i| p.order[i as usize]);
    let gone: Vec<u32> = inputs.filter(|&i| i != 8).skip(2).chain([8]).collect();
    let left: Vec<f32> = (0..320u32)
        .filter(|i| !gone.contains(i))
        .flat_map(|i| after[i as usize].clone())
        .collect();
    let folded = extend(&left, DIM, &root, &centroids, p.files.clone()).unwrap();
    assert_eq!((folded.rewritten, folded.patched, folded.added), (1, 0, 0));
    let r = &folded.lists.root;
    assert!(r.patches_of(base).is_empty());
    assert_eq!((r.removed_in(base).count(), r.rows(base)), (0, 2 + had));
}
