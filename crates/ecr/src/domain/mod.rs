//! The registry's state: repositories, images, tags, layers, uploads and tokens, shared by the
//! ECR API and the OCI Distribution API (they are two doors to one store).
//!
//! Documents (namespaces by the store's convention):
//! * `ecr/<acct>/<region>/repositories` → [`Repository`], keyed by name;
//! * `ecr/<acct>/<region>/images/<repo>` → [`ImageRecord`], keyed by manifest digest;
//! * `ecr/<acct>/<region>/tags/<repo>` → [`TagRecord`], keyed by tag (the only place a tag
//!   lives, so moving a tag is one conditional write);
//! * `ecr/<acct>/<region>/layers/<repo>` → [`LayerRecord`], keyed by digest: the blobs uploaded
//!   to (or mounted into) a repository, which its manifests may reference;
//! * `ecr/uploads` → [`UploadRecord`]; `ecr/tokens` → [`TokenRecord`].
//!
//! Bytes live in [`BlobStore`](crate::blobs::BlobStore), content-addressed and shared; [`Ecr::collect_garbage`] removes
//! what no image and no recent upload references.
//!
//! Layout (each module only uses those above it): `records` (documents, [`RepoRef`],
//! namespaces), `errors` ([`EcrError`], [`PutError`]), `service` ([`Ecr`] and its
//! repositories), `upkeep` (layers, uploads, tokens, garbage collection), `images`
//! (manifests, tags, lifecycle).

mod errors;
mod images;
mod records;
mod service;
mod upkeep;
#[cfg(test)]
mod tests;

pub use errors::{EcrError, PutError, repository_not_found};
pub use images::{ImageView, image_event};
pub use records::*;
pub use service::Ecr;
