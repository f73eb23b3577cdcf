//! A built index on disk, read through `vitrine-index`'s own types: its manifest, every item's
//! metadata, thumbnails, and the check that the folder holds exactly what the manifest lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use vitrine_index::chunks::ChunkTable;
use vitrine_index::{Item, MANIFEST, Manifest, MetadataChunk};

use crate::cli::Cli;

/// A built index folder and its manifest.
pub struct SiteDir {
    /// The folder holding `manifest.json`.
    pub dir: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
}

impl SiteDir {
    /// Reads `dir/manifest.json`.
    #[track_caller]
    pub fn open(dir: &Path) -> Self {
        let bytes = std::fs::read(dir.join(MANIFEST))
            .unwrap_or_else(|e| panic!("{}: no manifest ({e})", dir.display()));
        let manifest = Manifest::from_json(&bytes).expect("a valid manifest");
        Self {
            dir: dir.to_owned(),
            manifest,
        }
    }

    /// The chunk table: where each item's metadata and thumbnail are.
    #[track_caller]
    pub fn chunk_table(&self) -> ChunkTable {
        ChunkTable::from_bytes(
            &self.read(&self.manifest.files.chunks.path),
            self.manifest.count,
        )
        .expect("a valid chunk table")
    }

    /// Every item's metadata, in index order.
    pub fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        for chunk in self.chunk_table().chunks {
            let bytes = self.read(&chunk.metadata.path);
            let parsed = MetadataChunk::from_json(&bytes, chunk.first).expect("a metadata chunk");
            assert_eq!(parsed.items.len(), chunk.count as usize);
            items.extend(parsed.items);
        }
        items
    }

    /// Items by id.
    pub fn items_by_id(&self) -> BTreeMap<String, Item> {
        self.items()
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect()
    }

    /// The bytes of a file of the site.
    #[track_caller]
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The decoded thumbnail of the item `id`.
    #[track_caller]
    pub fn thumbnail(&self, id: &str) -> image::DynamicImage {
        let items = self.items_by_id();
        let item = items
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not indexed"));
        let thumb = item.thumbnail.as_ref().expect("every item has a thumbnail");
        let position = self
            .items()
            .iter()
            .position(|i| i.id == id)
            .expect("indexed") as u32;
        let table = self.chunk_table();
        let (_, chunk) = table.chunk_of(position).expect("a chunk holds every item");
        let pack = self.read(&chunk.pack.as_ref().expect("the chunk has a pack").path);
        let jpeg = thumb.cut(&pack).expect("the thumbnail matches its hash");
        image::load_from_memory(jpeg).expect("thumbnails are images")
    }

    /// The JPEG bytes of every item's thumbnail, by id.
    pub fn thumbnail_bytes(&self) -> BTreeMap<String, Vec<u8>> {
        let table = self.chunk_table();
        let mut out = BTreeMap::new();
        for chunk in &table.chunks {
            let parsed = MetadataChunk::from_json(&self.read(&chunk.metadata.path), chunk.first)
                .expect("a metadata chunk");
            let pack = chunk
                .pack
                .as_ref()
                .map(|p| self.read(&p.path))
                .unwrap_or_default();
            for item in parsed.items {
                if let Some(t) = &item.thumbnail {
                    out.insert(item.id.clone(), t.cut(&pack).expect("checked").to_vec());
                }
            }
        }
        out
    }

    /// Paths of every file of the site: the manifest, the files it lists, and those the vectors'
    /// root and the chunk table name.
    pub fn listed_files(&self) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = self
            .manifest
            .files
            .all()
            .into_iter()
            .map(|f| f.path.clone())
            .collect();
        set.insert(MANIFEST.to_string());
        // The vectors' root names the lists, the chunk table the metadata and thumbnail packs.
        let root =
            vitrine_index::lists::Root::from_bytes(&self.read(&self.manifest.files.vectors.path))
                .expect("the vectors' root loads");
        let files = self.manifest.files.site_files(&root, &self.chunk_table());
        set.extend(files.into_iter().map(|f| f.path));
        set
    }

    /// Asserts that `dir` holds exactly the files its manifest lists (nothing more, such as a
    /// staging folder or a stray temporary file) and that `verify` accepts it.
    #[track_caller]
    pub fn assert_complete(cli: &Cli, dir: &Path) -> Self {
        let site = Self::open(dir);
        let on_disk: BTreeSet<String> = tree(dir).into_keys().collect();
        assert_eq!(
            on_disk,
            site.listed_files(),
            "{} holds exactly the manifest's files",
            dir.display()
        );
        cli.verify(dir).expect_code(0);
        site
    }
}

/// Every file under `dir` by relative path (with `/`), with its bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel
                    .iter()
                    .map(|p| p.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
