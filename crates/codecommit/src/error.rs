//! CodeCommit's domain errors. They say what went wrong and name no wire code; the one
//! `From<CodeCommitError> for AwsError` below gives each AWS's code and message, so `?` at the
//! edge converts and domain callers match variants.

use codeyard_core::AwsError;
use codeyard_store::StoreError;

pub type CcResult<T> = Result<T, CodeCommitError>;

#[derive(Clone, Debug)]
pub enum CodeCommitError {
    // Repositories.
    RepositoryNameRequired,
    InvalidRepositoryName,
    RepositoryNotFound(String),
    RepositoryNameExists(String),
    TooManyRepositoryNames,
    /// The metadata changed under a batch that expected it not to (a delete racing an update).
    ConcurrentModification,
    // Tags and resource ARNs.
    TooManyTags,
    SystemTagKey,
    ResourceArnRequired,
    InvalidResourceArn(String),
    // Branches.
    BranchNameRequired,
    InvalidBranchName(String),
    BranchNotFound(String),
    BranchExists(String),
    DefaultBranchCannotBeDeleted(String),
    /// The branch moved while DeleteBranch removed it.
    BranchChangedWhileDeleting(String),
    // Commits.
    CommitIdRequired,
    InvalidCommitId(String),
    /// GetCommit's commit id names no commit.
    CommitIdNotFound(String),
    /// CreateBranch's commit id names no commit.
    CommitNotFound(String),
    /// A commit specifier resolves to nothing.
    SpecifierNotFound(String),
    /// No commit specifier and no default branch.
    EmptyRepository,
    CommitRequired,
    TooManyCommitIds,
    // Blobs.
    BlobIdRequired,
    InvalidBlobId(String),
    BlobNotFound(String),
    // Paths, files, folders.
    PathRequired,
    InvalidPath(String),
    PathNotFound(String),
    InvalidFileMode(String),
    /// A file a change names does not exist.
    FileNotFound(String),
    /// GetFile's path is not a file at the commit.
    FileNotInCommit(String),
    FolderNotFound(String),
    FileInsideFile { path: String, parent: String },
    FileNamedLikeFolder(String),
    FileOnSubmodule(String),
    // Building commits.
    ParentRequiredForBranch,
    ParentRequiredNotEmpty,
    InvalidParentCommitId(String),
    ParentCommitNotFound(String),
    ParentOutdated { parent: String, branch: String },
    /// The branch moved between reading it and the compare-and-swap.
    BranchMovedMeanwhile(String),
    NoChange,
    SameFileContent,
    FileEntryRequired,
    TooManyFileEntries,
    DuplicatePath(String),
    ContentAndSourceFile,
    SamePath,
    SourceFileOrContentRequired,
    // Paging.
    InvalidMaxResults,
    InvalidContinuationToken,
    /// git or the store failed: already an internal error, passed on as it is.
    Internal(AwsError),
}

impl From<AwsError> for CodeCommitError {
    fn from(e: AwsError) -> Self {
        CodeCommitError::Internal(e)
    }
}

impl From<std::io::Error> for CodeCommitError {
    fn from(e: std::io::Error) -> Self {
        CodeCommitError::Internal(e.into())
    }
}

/// As AWS would report it (code, status, message): for logs and start-up failures.
impl std::fmt::Display for CodeCommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", AwsError::from(self.clone()))
    }
}

impl std::error::Error for CodeCommitError {}

impl From<StoreError> for CodeCommitError {
    fn from(e: StoreError) -> Self {
        CodeCommitError::Internal(e.into())
    }
}

impl From<CodeCommitError> for AwsError {
    fn from(e: CodeCommitError) -> Self {
        use CodeCommitError::*;
        let (code, message): (&str, String) = match e {
            Internal(e) => return e,
            RepositoryNameRequired => ("RepositoryNameRequiredException", "A repository name is required.".into()),
            InvalidRepositoryName => (
                "InvalidRepositoryNameException",
                "The repository name is not valid. Repository names can be any valid combination of letters, numbers, periods, underscores, and dashes between 1 and 100 characters in length. Names are case sensitive. For more information, see Limits in the AWS CodeCommit User Guide.".into(),
            ),
            RepositoryNotFound(name) => ("RepositoryDoesNotExistException", format!("{name} does not exist")),
            RepositoryNameExists(name) => ("RepositoryNameExistsException", format!("Repository named {name} already exists")),
            TooManyRepositoryNames => (
                "MaximumRepositoryNamesExceededException",
                "The maximum number of allowed repository names was exceeded. Currently, this number is 25.".into(),
            ),
            ConcurrentModification => (
                "ConcurrentModificationException",
                "The repository was changed by another request at the same time. Try again.".into(),
            ),
            TooManyTags => ("TooManyTagsException", "The maximum number of tags for a repository is 50.".into()),
            SystemTagKey => ("InvalidSystemTagUsageException", "The tag key contains a prefix reserved for system tags.".into()),
            ResourceArnRequired => (
                "ResourceArnRequiredException",
                "A valid Amazon Resource Name (ARN) for an AWS CodeCommit resource is required.".into(),
            ),
            InvalidResourceArn(arn) => ("InvalidResourceArnException", format!("The value for the resource ARN is not valid: {arn}")),
            BranchNameRequired => ("BranchNameRequiredException", "A branch name is required.".into()),
            InvalidBranchName(b) => ("InvalidBranchNameException", format!("The branch name {b} is not valid.")),
            BranchNotFound(b) => ("BranchDoesNotExistException", format!("Branch {b} does not exist.")),
            BranchExists(b) => ("BranchNameExistsException", format!("Branch {b} already exists.")),
            DefaultBranchCannotBeDeleted(b) => ("DefaultBranchCannotBeDeletedException", format!("The default branch {b} cannot be deleted.")),
            BranchChangedWhileDeleting(b) => (
                "ConcurrentReferenceUpdateException",
                format!("The branch {b} was changed while it was being deleted."),
            ),
            CommitIdRequired => ("CommitIdRequiredException", "A commit ID is required.".into()),
            InvalidCommitId(id) => ("InvalidCommitIdException", format!("The commit ID {id} is not valid.")),
            CommitIdNotFound(id) => ("CommitIdDoesNotExistException", format!("Could not find commit {id}.")),
            CommitNotFound(id) => ("CommitDoesNotExistException", format!("The specified commit {id} does not exist.")),
            SpecifierNotFound(spec) => (
                "CommitDoesNotExistException",
                format!("Could not find commit {spec}. Make sure the commit specifier is correct."),
            ),
            EmptyRepository => (
                "CommitDoesNotExistException",
                "The repository is empty: no commit was specified and there is no default branch.".into(),
            ),
            CommitRequired => ("CommitRequiredException", "A commit specifier is required.".into()),
            TooManyCommitIds => (
                "CommitIdsLimitExceededException",
                "The maximum number of allowed commit IDs in a batch request is 100.".into(),
            ),
            BlobIdRequired => ("BlobIdRequiredException", "A blob ID is required.".into()),
            InvalidBlobId(id) => ("InvalidBlobIdException", format!("The blob ID {id} is not valid.")),
            BlobNotFound(id) => ("BlobIdDoesNotExistException", format!("Could not find blob {id}.")),
            PathRequired => ("PathRequiredException", "The folderPath for a location cannot be empty.".into()),
            InvalidPath(p) => ("InvalidPathException", format!("The specified path {p} is not valid.")),
            PathNotFound(p) => ("PathDoesNotExistException", format!("The specified path {p} does not exist.")),
            InvalidFileMode(m) => ("InvalidFileModeException", format!("The file mode {m} is not valid.")),
            FileNotFound(p) => ("FileDoesNotExistException", format!("The file {p} does not exist.")),
            FileNotInCommit(p) => ("FileDoesNotExistException", format!("The file {p} does not exist in the specified commit.")),
            FolderNotFound(f) => ("FolderDoesNotExistException", format!("The folder {f} does not exist in the specified commit.")),
            FileInsideFile { path, parent } => (
                "DirectoryNameConflictsWithFileNameException",
                format!("The path {path} would put a file inside {parent}, which is a file."),
            ),
            FileNamedLikeFolder(p) => ("FileNameConflictsWithDirectoryNameException", format!("The file name {p} is the name of a folder.")),
            FileOnSubmodule(p) => ("FilePathConflictsWithSubmodulePathException", format!("{p} is a submodule.")),
            ParentRequiredForBranch => (
                "ParentCommitIdRequiredException",
                "A parent commit ID is required to commit to an existing branch.".into(),
            ),
            ParentRequiredNotEmpty => (
                "ParentCommitIdRequiredException",
                "A parent commit ID is required when the repository is not empty.".into(),
            ),
            InvalidParentCommitId(p) => ("InvalidParentCommitIdException", format!("The parent commit ID {p} is not valid.")),
            ParentCommitNotFound(p) => ("ParentCommitDoesNotExistException", format!("The parent commit ID {p} does not exist.")),
            ParentOutdated { parent, branch } => (
                "ParentCommitIdOutdatedException",
                format!("The parent commit ID {parent} is not the most recent commit of branch {branch}."),
            ),
            BranchMovedMeanwhile(b) => (
                "ParentCommitIdOutdatedException",
                format!("The branch {b} was updated by another commit. Get the latest commit ID and try again."),
            ),
            NoChange => (
                "NoChangeException",
                "The commit cannot be created because no changes will be made to the repository as a result of this commit.".into(),
            ),
            SameFileContent => (
                "SameFileContentException",
                "The file could not be added because the provided file content is exactly the same as the current file content.".into(),
            ),
            FileEntryRequired => (
                "FileEntryRequiredException",
                "The commit cannot be created because no files have been specified as added, updated, or changed (PutFile or DeleteFile) for the commit.".into(),
            ),
            TooManyFileEntries => (
                "MaximumFileEntriesExceededException",
                "The number of specified files to change as part of this commit exceeds the maximum number of files that can be changed in a single commit.".into(),
            ),
            DuplicatePath(p) => ("PutFileEntryConflictException", format!("The file {p} is specified more than once.")),
            ContentAndSourceFile => (
                "FileContentAndSourceFileSpecifiedException",
                "The commit cannot be created because both a source file and file content have been specified for the same file.".into(),
            ),
            SamePath => ("SamePathRequestException", "The source file and the destination are the same.".into()),
            SourceFileOrContentRequired => (
                "SourceFileOrContentRequiredException",
                "The commit cannot be created because no source files or file content have been specified for the commit.".into(),
            ),
            InvalidMaxResults => ("InvalidMaxResultsException", "The specified number of maximum results is not valid.".into()),
            InvalidContinuationToken => ("InvalidContinuationTokenException", "The specified continuation token is not valid.".into()),
        };
        AwsError::client(code, message)
    }
}
