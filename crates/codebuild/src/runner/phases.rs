//! The phases a build walks once it has a slot: PROVISIONING through FINALIZING
//! ([`Engine::run_phases`]), with DOWNLOAD_SOURCE's fetching in [`Engine::download_source`].
//! The lifecycle (queue, timeout, stop, COMPLETED) is the parent module's.

use super::{Control, Engine, PhaseResult, SHUTDOWN_MESSAGE};
use crate::build::BuildRecord;
use crate::buildspec::{Buildspec, OnFailure, PHASES};
use crate::executor::{Exit, Invocation, Sandbox};
use crate::logs;
use crate::reports;
use crate::script::{self, PhaseScript};
use codeyard_core::hub::BuildStatus;
use codeyard_core::{AwsResult, RequestContext};
use std::path::Path;
use std::sync::Arc;

impl Engine {
    /// PROVISIONING to FINALIZING, acting as `ctx` (the service role's session); returns the
    /// build status. `log_stream` answers whether the role could create the log stream.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_phases(
        &self,
        b: &mut BuildRecord,
        ctx: &RequestContext,
        sandbox: &Arc<dyn Sandbox>,
        control: &Arc<Control>,
        workspace: &Path,
        masks: &logs::Masks,
        log_stream: Option<&mut tokio::sync::oneshot::Receiver<Result<(), String>>>,
    ) -> AwsResult<BuildStatus> {
        let sb = Some(sandbox);
        let ctx = ctx.clone();
        self.enter(b, "PROVISIONING", sb).await?;
        let src_dir = workspace.join("src");
        let home = workspace.join("home");
        let state_dir = workspace.join("state");
        let scratch = workspace.join("scratch");
        for d in [&src_dir, &home, &state_dir, &scratch] {
            std::fs::create_dir_all(d)?;
        }
        if let Some(n) = self.executor.notice().or_else(|| self.executor_note.clone()) {
            sandbox.note(&logs::agent_line(&n));
        }
        let mut provisioning = crate::executor::Provisioning {
            image: b.config.environment.image.clone(),
            privileged: b.config.environment.privileged_mode.unwrap_or(false),
            pull_credentials: b
                .config.environment
                .image_pull_credentials_type
                .as_ref()
                .map_or("CODEBUILD", |t| t.as_str())
                .to_string(),
            registry_login: None,
        };
        match crate::access::provisioning(&self.platform, &ctx, b, &provisioning, log_stream).await {
            Ok(login) => provisioning.registry_login = login,
            Err(context) => {
                self.finish(b, BuildStatus::Failed, Some(context), sb).await?;
                return self.finalize(b, sb, BuildStatus::Failed).await;
            }
        }
        let placement = match sandbox.provision(&provisioning).await {
            Ok(p) => p,
            Err(e) => {
                let status = Self::interrupt_status(control).unwrap_or(BuildStatus::Failed);
                self.finish(b, status, Some((e.code, e.message)), sb)
                    .await?;
                return self.finalize(b, sb, status).await;
            }
        };
        let access = match placement {
            crate::executor::Placement::Container { .. } => Some(self.credentials.open(b).await),
            crate::executor::Placement::Host => None,
        };
        let image_path = match &placement {
            crate::executor::Placement::Container { path, .. } => path.clone(),
            crate::executor::Placement::Host => None,
        };
        let runs = match &access {
            Some(credentials) => crate::environment::Runs::Container {
                credentials,
                image_path,
            },
            None => crate::environment::Runs::Host,
        };
        let mut env = match crate::environment::assemble(
            &self.platform,
            &ctx,
            b,
            &src_dir,
            &home,
            &scratch,
            runs,
        )
        .await
        {
            Ok(env) => env,
            Err(msg) => {
                self.finish(b, BuildStatus::Failed, Some(("CLIENT_ERROR".into(), msg)), sb)
                    .await?;
                return self.finalize(b, sb, BuildStatus::Failed).await;
            }
        };
        masks.lock().unwrap().extend(env.secrets.drain(..));
        for w in env.warnings.drain(..) {
            sandbox.note(&logs::agent_line(&w));
        }
        if let Some(s) = Self::interrupt_status(control) {
            self.finish(b, s, None, sb).await?;
            return self.finalize(b, sb, s).await;
        }
        self.finish(b, BuildStatus::Succeeded, None, sb).await?;

        // DOWNLOAD_SOURCE
        self.enter(b, "DOWNLOAD_SOURCE", sb).await?;
        let in_container = access.is_some();
        let mut spec = match self
            .download_source(&ctx, b, &src_dir, workspace, &mut env)
            .await
        {
            Ok(spec) => spec,
            Err((code, msg)) => {
                for w in env.warnings.drain(..) {
                    sandbox.note(&logs::agent_line(&w));
                }
                let status = Self::interrupt_status(control).unwrap_or(BuildStatus::Failed);
                self.finish(b, status, Some((code, msg)), sb).await?;
                return self.finalize(b, sb, status).await;
            }
        };
        masks.lock().unwrap().extend(env.secrets.drain(..));
        for w in env.warnings.drain(..) {
            sandbox.note(&logs::agent_line(&w));
        }
        if !in_container && (spec.run_as.is_some() || spec.phases.iter().any(|p| p.run_as.is_some())) {
            sandbox.note(&logs::agent_line("run-as is not supported on the host: commands run as codeyard's own user"));
        }
        if !spec.runtime_versions.is_empty()
            && let Err(msg) = self.select_runtimes(sandbox, &env, &src_dir, &state_dir, in_container, &mut spec).await
        {
            let status = Self::interrupt_status(control).unwrap_or(BuildStatus::Failed);
            self.finish(b, status, Some(("YAML_FILE_ERROR".into(), msg)), sb).await?;
            return self.finalize(b, sb, status).await;
        }
        let cache = crate::cache::Cache::new(&self.platform, b, &spec, &src_dir, &home);
        if let Some(c) = &cache
            && let Err(e) = c.restore(&ctx).await
        {
            sandbox.note(&logs::agent_line(&format!("cache restore skipped: {e}")));
        }
        // In a container, cached `/root/...` paths live in the container's own /root.
        if in_container && let Some(script) = cache.as_ref().and_then(|c| c.container_sync_script(&home, true)) {
            self.sync_cache(sandbox, &env, &src_dir, script, "restore").await;
        }
        self.finish(b, BuildStatus::Succeeded, None, sb).await?;

        // INSTALL .. POST_BUILD
        let mut failed = false;
        let mut abort = false;
        let mut interrupted: Option<BuildStatus> = None;
        for (i, (key, api)) in PHASES.iter().enumerate() {
            if abort || interrupted.is_some() {
                break;
            }
            self.enter(b, api, sb).await?;
            let phase = &spec.phases[i];
            let run_as = phase.run_as.as_ref().or(spec.run_as.as_ref()).filter(|_| in_container);
            let result = if phase.commands.is_empty() && phase.finally.is_empty() {
                PhaseResult::Succeeded
            } else if let Some(Err(reason)) = match run_as {
                Some(user) => Some(grant_run_as(sandbox, &env, &src_dir, workspace, user).await),
                None => None,
            } {
                let first = phase.commands.first().or(phase.finally.first()).cloned().unwrap_or_default();
                PhaseResult::Failed(
                    "COMMAND_EXECUTION_ERROR".into(),
                    format!("Error while executing command: {first}. Reason: {reason}"),
                )
            } else {
                let script = PhaseScript {
                    phase: key,
                    version: &spec.version,
                    commands: &phase.commands,
                    finally: &phase.finally,
                    state_dir: &state_dir,
                    succeeding: !failed,
                    exported_variables: &spec.exported_variables,
                    posix: spec
                        .shell
                        .as_deref()
                        .is_some_and(|s| s == "/bin/sh" || s == "sh"),
                }
                .write()?;
                let inv = Invocation {
                    program: "bash".into(),
                    args: vec![script.display().to_string()],
                    env: env.vars.clone(),
                    cwd: src_dir.clone(),
                    user: run_as.cloned(),
                };
                match sandbox.run(inv).await {
                    Ok(Exit::Code(0)) => PhaseResult::Succeeded,
                    Ok(Exit::Code(code)) => {
                        let f = script::failure(&state_dir, &phase.commands, &phase.finally, code);
                        PhaseResult::Failed(
                            "COMMAND_EXECUTION_ERROR".into(),
                            format!(
                                "Error while executing command: {}. Reason: exit status {}",
                                f.command, f.status
                            ),
                        )
                    }
                    Ok(Exit::Killed) => PhaseResult::Interrupted,
                    Err(e) => PhaseResult::Failed(
                        "CLIENT_ERROR".into(),
                        format!("cannot run the phase: {e}"),
                    ),
                }
            };
            let exported = script::exported(&state_dir);
            for (k, v) in exported {
                b.exported.retain(|(n, _)| *n != k);
                b.exported.push((k, v));
            }
            match result {
                PhaseResult::Succeeded => self.finish(b, BuildStatus::Succeeded, None, sb).await?,
                PhaseResult::Failed(code, msg) => {
                    failed = true;
                    self.finish(b, BuildStatus::Failed, Some((code, msg)), sb).await?;
                    if phase.on_failure == OnFailure::Abort
                        && matches!(*api, "INSTALL" | "PRE_BUILD")
                    {
                        abort = true;
                    }
                }
                PhaseResult::Interrupted => {
                    let s = Self::interrupt_status(control).unwrap_or(BuildStatus::Stopped);
                    let context = (s == BuildStatus::Fault)
                        .then(|| ("CLIENT_ERROR".to_string(), SHUTDOWN_MESSAGE.to_string()));
                    self.finish(b, s, context, sb).await?;
                    interrupted = Some(s);
                }
            }
        }
        // Exported variables keep the names AWS reports even when unset (empty value).
        for n in &spec.exported_variables {
            if !b.exported.iter().any(|(k, _)| k == n) {
                b.exported.push((n.clone(), String::new()));
            }
        }
        if let Some(s) = interrupted {
            return self.finalize(b, sb, s).await;
        }

        // UPLOAD_ARTIFACTS: attempted unless INSTALL or PRE_BUILD aborted the build.
        if !abort {
            self.enter(b, "UPLOAD_ARTIFACTS", sb).await?;
            match crate::upload::upload(&self.platform, &ctx, b, &spec, &src_dir, &scratch).await {
                Ok(()) => self.finish(b, BuildStatus::Succeeded, None, sb).await?,
                Err(msg) => {
                    failed = true;
                    self.finish(b, BuildStatus::Failed, Some(("CLIENT_ERROR".into(), msg)), sb)
                        .await?;
                }
            }
        }
        if in_container && let Some(script) = cache.as_ref().and_then(|c| c.container_sync_script(&home, false)) {
            self.sync_cache(sandbox, &env, &src_dir, script, "save").await;
        }
        if let Some(c) = &cache
            && let Err(e) = c.save(&ctx).await
        {
            sandbox.note(&logs::agent_line(&format!("cache save failed: {e}")));
        }
        match reports::collect(&self.platform, &ctx, b, &spec, &src_dir).await {
            Ok(arns) => b.report_arns = arns,
            Err(e) => sandbox.note(&logs::agent_line(&format!("reports: {e}"))),
        }
        let status = if failed { BuildStatus::Failed } else { BuildStatus::Succeeded };
        self.finalize(b, sb, status).await
    }

    /// `runtime-versions` against the image's runtimes file (read inside the container, or on
    /// the host for host builds): the selected versions' commands go first in INSTALL; `Err`
    /// is CodeBuild's message for one the image does not provide.
    async fn select_runtimes(
        &self,
        sandbox: &Arc<dyn Sandbox>,
        env: &crate::environment::BuildEnv,
        src_dir: &Path,
        state_dir: &Path,
        in_container: bool,
        spec: &mut Buildspec,
    ) -> Result<(), String> {
        use crate::runtimes::{NOT_SUPPORTED, RUNTIMES_FILE, Runtimes};
        let file = if in_container {
            let copy = state_dir.join("runtimes.yml");
            let script = format!(
                "if [ -f {RUNTIMES_FILE} ]; then cat {RUNTIMES_FILE} > {}; fi",
                script::single_quote(&copy.display().to_string())
            );
            let _ = run_script(sandbox, env, src_dir, script).await;
            copy
        } else {
            std::path::PathBuf::from(RUNTIMES_FILE)
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            sandbox.note(&logs::agent_line(NOT_SUPPORTED));
            return Ok(());
        };
        let selection = Runtimes::parse(&text)?.select(&spec.runtime_versions);
        for n in &selection.notes {
            sandbox.note(&logs::agent_line(n));
        }
        if let Some(msg) = selection.error {
            return Err(msg);
        }
        let install = &mut spec.phases[0].commands;
        install.splice(0..0, selection.commands);
        Ok(())
    }

    /// Runs a cache sync script in the build's container; a failure is noted in the log.
    async fn sync_cache(
        &self,
        sandbox: &Arc<dyn Sandbox>,
        env: &crate::environment::BuildEnv,
        src_dir: &Path,
        script: String,
        what: &str,
    ) {
        match run_script(sandbox, env, src_dir, script).await {
            Ok(Exit::Code(0)) => {}
            Ok(other) => sandbox.note(&logs::agent_line(&format!("cache {what} in the container failed: {other:?}"))),
            Err(e) => sandbox.note(&logs::agent_line(&format!("cache {what} in the container failed: {e}"))),
        }
    }

    async fn finalize(
        &self,
        b: &mut BuildRecord,
        sb: Option<&Arc<dyn Sandbox>>,
        status: BuildStatus,
    ) -> AwsResult<BuildStatus> {
        self.enter(b, "FINALIZING", sb).await?;
        self.finish(b, BuildStatus::Succeeded, None, sb).await?;
        Ok(status)
    }

    /// Fetches the primary and secondary sources and reads the buildspec.
    async fn download_source(
        &self,
        ctx: &RequestContext,
        b: &mut BuildRecord,
        src_dir: &Path,
        workspace: &Path,
        env: &mut crate::environment::BuildEnv,
    ) -> Result<Buildspec, (String, String)> {
        let client = |m: String| ("CLIENT_ERROR".to_string(), m);
        let fetcher = crate::source::Sources { platform: &self.platform, ctx, workspace };
        if let Some(p) = b.pipeline.clone() {
            for (i, input) in p.inputs.iter().enumerate() {
                let dest = if i == 0 {
                    src_dir.to_path_buf()
                } else {
                    workspace.join(format!("src_{}", input.name))
                };
                fetcher
                    .fetch_pipeline_input(&input.bucket, &input.key, &dest)
                    .await
                    .map_err(client)?;
                if i == 0 {
                    env.set(
                        "CODEBUILD_SOURCE_VERSION",
                        &format!("arn:aws:s3:::{}/{}", input.bucket, input.key),
                    );
                } else {
                    env.set(
                        &format!("CODEBUILD_SRC_DIR_{}", input.name),
                        &dest.display().to_string(),
                    );
                }
            }
            if let Some(rev) = &p.source_revision {
                b.resolved_source_version = Some(rev.clone());
                env.set("CODEBUILD_RESOLVED_SOURCE_VERSION", rev);
            }
        } else {
            let fetched = fetcher
                .fetch(&b.config.source, b.config.source_version.as_deref(), src_dir)
                .await
                .map_err(client)?;
            if let Some(r) = &fetched.resolved {
                b.resolved_source_version = Some(r.clone());
                env.set("CODEBUILD_RESOLVED_SOURCE_VERSION", r);
            }
            env.set(
                "CODEBUILD_SOURCE_VERSION",
                b.config
                    .source_version
                    .as_deref()
                    .unwrap_or(fetched.resolved.as_deref().unwrap_or("")),
            );
            env.set(
                "CODEBUILD_SOURCE_REPO_URL",
                b.config.source.location.as_deref().unwrap_or(""),
            );
            for s in b.config.secondary_sources.clone() {
                let ident = s.source_identifier.clone().unwrap_or_default();
                let version = b
                    .config
                    .secondary_source_versions
                    .iter()
                    .find(|v| v.source_identifier == ident)
                    .map(|v| v.source_version.clone());
                let dest = workspace.join(format!("src_{ident}"));
                fetcher.fetch(&s, version.as_deref(), &dest).await.map_err(client)?;
                env.set(
                    &format!("CODEBUILD_SRC_DIR_{ident}"),
                    &dest.display().to_string(),
                );
            }
        }
        let text = fetcher
            .buildspec_text(b.config.source.buildspec.as_deref(), src_dir)
            .await
            .map_err(|m| ("YAML_FILE_ERROR".to_string(), m))?;
        let spec = Buildspec::parse(&text).map_err(|e| ("YAML_FILE_ERROR".to_string(), e.0))?;
        env.apply_buildspec(&spec);
        let sources = env.sources(&spec);
        crate::secrets::resolve(&self.platform.hub, ctx, &sources, env).await?;
        if spec.git_credential_helper {
            crate::environment::git_credential_helper(env, &workspace.join("home"))
                .map_err(|e| client(e.to_string()))?;
        }
        Ok(spec)
    }
}

/// Before a phase runs as `user` (`run-as`) in a container: the user must exist in the image
/// (`Err`: the reason the phase fails, as the agent's user lookup words it), and is granted
/// read, write and execute on the build's directories (sources, scripts, the output pipe), as
/// CodeBuild grants the run-as user access to the source.
async fn grant_run_as(
    sandbox: &Arc<dyn Sandbox>,
    env: &crate::environment::BuildEnv,
    src_dir: &Path,
    workspace: &Path,
    user: &str,
) -> Result<(), String> {
    let quoted = script::single_quote(user);
    let root = script::single_quote(&workspace.display().to_string());
    let check = format!("id -u -- {quoted} >/dev/null 2>&1 || exit 3; chmod -R a+rwX {root}");
    match run_script(sandbox, env, src_dir, check).await {
        Ok(Exit::Code(0)) | Ok(Exit::Killed) => Ok(()),
        Ok(Exit::Code(3)) => Err(format!("user: unknown user {user}")),
        Ok(Exit::Code(c)) => Err(format!("cannot prepare the build's directories for {user}: exit status {c}")),
        Err(e) => Err(format!("cannot prepare the build's directories for {user}: {e}")),
    }
}

/// `bash -c script` in the build's sandbox, with the build's environment, in the source dir.
async fn run_script(
    sandbox: &Arc<dyn Sandbox>,
    env: &crate::environment::BuildEnv,
    src_dir: &Path,
    script: String,
) -> std::io::Result<Exit> {
    let inv = Invocation { program: "bash".into(), args: vec!["-c".into(), script], env: env.vars.clone(), cwd: src_dir.to_path_buf(), user: None };
    sandbox.run(inv).await
}
