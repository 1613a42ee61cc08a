//! fly's command line (upstream's go-flags names, short flags and aliases).

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fly",
    disable_version_flag = true,
    about = "The Concourse CLI",
    max_term_width = 100
)]
pub struct FlyArgs {
    /// Concourse target name
    #[arg(short = 't', long, global = true, value_name = "NAME")]
    pub target: Option<String>,
    /// Print the version of Fly and exit
    #[arg(short = 'v', long)]
    pub version: bool,
    /// Print API requests and responses
    #[arg(long, global = true)]
    pub verbose: bool,
    /// Print table headers even for redirected output
    #[arg(long, global = true)]
    pub print_table_headers: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Authenticate with the target
    #[command(visible_alias = "l")]
    Login(LoginArgs),
    /// Release authentication with the target
    #[command(visible_alias = "o")]
    Logout(LogoutArgs),
    /// List saved targets
    #[command(visible_alias = "ts")]
    Targets,
    /// Login status
    Status,
    /// User information
    Userinfo(JsonArg),
    /// List the active users since a date or for the past 2 months
    #[command(visible_alias = "au")]
    ActiveUsers(super::admin::ActiveUsersArgs),
    /// Check cluster health
    Health(super::misc::HealthArgs),
    /// Download and replace the current fly from the target
    #[command(visible_alias = "s")]
    Sync(SyncArgs),
    /// Curl the target's API with its token
    #[command(visible_alias = "c")]
    Curl(CurlArgs),
    /// Delete target
    #[command(visible_alias = "dtg")]
    DeleteTarget(AllArg),
    /// Edit a target
    #[command(visible_alias = "etg")]
    EditTarget(EditTargetArgs),
    /// Create or update a pipeline's configuration
    #[command(visible_alias = "sp")]
    SetPipeline(SetPipelineArgs),
    /// Get a pipeline's current configuration
    #[command(visible_alias = "gp")]
    GetPipeline(GetPipelineArgs),
    /// Destroy a pipeline
    #[command(visible_alias = "dp")]
    DestroyPipeline(DestroyPipelineArgs),
    /// List the configured pipelines
    #[command(visible_alias = "ps")]
    Pipelines(PipelinesArgs),
    /// Pause a pipeline
    #[command(visible_alias = "pp")]
    PausePipeline(PipelineOrAllArgs),
    /// Un-pause a pipeline
    #[command(visible_alias = "up")]
    UnpausePipeline(PipelineOrAllArgs),
    /// Make a pipeline publicly viewable
    #[command(visible_alias = "ep")]
    ExposePipeline(PipelineArgs),
    /// Hide a pipeline from the public
    #[command(visible_alias = "hp")]
    HidePipeline(PipelineArgs),
    /// Rename a pipeline
    #[command(visible_alias = "rp")]
    RenamePipeline(RenamePipelineArgs),
    /// Orders pipelines
    #[command(visible_alias = "op")]
    OrderPipelines(OrderPipelinesArgs),
    /// Orders instanced pipelines within an instance group
    #[command(visible_alias = "oip")]
    OrderInstancedPipelines(super::misc::OrderInstancedPipelinesArgs),
    /// Archive a pipeline
    #[command(visible_alias = "ap")]
    ArchivePipeline(ArchivePipelineArgs),
    /// List the paused pipelines
    #[command(visible_alias = "pps")]
    PausedPipelines(PausedPipelinesArgs),
    /// Print a Checkfile of the given pipeline
    #[command(visible_alias = "cl")]
    Checklist(PipelineArgs),
    /// Validate a pipeline config
    #[command(visible_alias = "vp")]
    ValidatePipeline(ValidatePipelineArgs),
    /// Format a pipeline config
    #[command(visible_alias = "fp")]
    FormatPipeline(FormatPipelineArgs),
    /// List the jobs in the pipelines
    #[command(visible_alias = "js")]
    Jobs(JobsArgs),
    /// List the paused jobs of a pipeline
    #[command(visible_alias = "pjs")]
    PausedJobs(JobsArgs),
    /// Pause a job
    #[command(visible_alias = "pj")]
    PauseJob(JobArgs),
    /// Unpause a job
    #[command(visible_alias = "uj")]
    UnpauseJob(JobArgs),
    /// Request the scheduler to run for a job. Introduced as a recovery command for the v6.0 scheduler.
    #[command(visible_alias = "sj")]
    ScheduleJob(super::misc::ScheduleJobArgs),
    /// List builds data
    #[command(visible_alias = "bs")]
    Builds(super::builds::BuildsArgs),
    /// Start a job in a pipeline
    #[command(visible_alias = "tj")]
    TriggerJob(super::builds::TriggerJobArgs),
    /// Abort a build
    #[command(visible_alias = "ab")]
    AbortBuild(super::builds::AbortBuildArgs),
    /// Execute a one-off build using local bits
    #[command(visible_alias = "e")]
    Execute(super::execute::ExecuteArgs),
    /// Stream a build's output
    #[command(visible_alias = "w")]
    Watch(super::builds::WatchArgs),
    /// Rerun a build
    #[command(visible_alias = "rb")]
    RerunBuild(super::builds::RerunBuildArgs),
    /// List the resources in the pipeline
    #[command(visible_alias = "rs")]
    Resources(super::resources::ResourcesArgs),
    /// List the versions of a resource
    #[command(visible_alias = "rvs")]
    ResourceVersions(super::resources::ResourceVersionsArgs),
    /// Pin a version to a resource
    #[command(visible_alias = "pr")]
    PinResource(super::resources::PinResourceArgs),
    /// Unpin a resource
    #[command(visible_alias = "ur")]
    UnpinResource(super::resources::UnpinResourceArgs),
    /// Enable a version of a resource
    #[command(visible_alias = "erv")]
    EnableResourceVersion(super::resources::ResourceVersionArgs),
    /// Disable a version of a resource
    #[command(visible_alias = "drv")]
    DisableResourceVersion(super::resources::ResourceVersionArgs),
    /// Check a resource
    #[command(visible_alias = "cr")]
    CheckResource(super::resources::CheckResourceArgs),
    /// Clear cache of a resource
    #[command(visible_alias = "crc")]
    ClearResourceCache(super::misc::ClearResourceCacheArgs),
    /// Clear versions of a resource or resource type
    #[command(visible_alias = "cv")]
    ClearVersions(super::misc::ClearVersionsArgs),
    /// Check a resource-type
    #[command(visible_alias = "crt")]
    CheckResourceType(super::resources::CheckResourceTypeArgs),
    /// List the registered workers
    #[command(visible_alias = "ws")]
    Workers(super::workers::WorkersArgs),
    /// Prune a stalled, landing, landed, or retiring worker
    #[command(visible_alias = "pw")]
    PruneWorker(super::workers::PruneWorkerArgs),
    /// Land a worker
    #[command(visible_alias = "lw")]
    LandWorker(super::workers::LandWorkerArgs),
    /// Print the active containers
    #[command(visible_alias = "cs")]
    Containers(super::containers::ContainersArgs),
    /// List the active volumes
    #[command(visible_alias = "vs")]
    Volumes(super::containers::VolumesArgs),
    /// Execute a command in a container
    #[command(visible_aliases = ["intercept", "i"])]
    Hijack(super::intercept::InterceptArgs),
    /// Clears cache from a task container
    #[command(visible_alias = "ctc")]
    ClearTaskCache(super::containers::ClearTaskCacheArgs),
    /// List the configured teams
    #[command(visible_alias = "t")]
    Teams(TeamsArgs),
    /// Show team configuration
    #[command(visible_alias = "gt")]
    GetTeam(GetTeamArgs),
    /// Create or modify a team to have the given credentials
    #[command(visible_alias = "st")]
    SetTeam(Box<SetTeamArgs>),
    /// Rename a team
    #[command(visible_alias = "rt")]
    RenameTeam(RenameTeamArgs),
    /// Destroy a team and delete all of its data
    #[command(visible_alias = "dt")]
    DestroyTeam(DestroyTeamArgs),
    /// Get the current wall message
    #[command(visible_alias = "gw")]
    GetWall,
    /// Set a wall message
    #[command(visible_alias = "sw")]
    SetWall(super::admin::SetWallArgs),
    /// Clear the wall message
    #[command(visible_alias = "cw")]
    ClearWall,
    /// Get details about all web components
    #[command(visible_alias = "gc")]
    GetComponents(super::admin::ComponentsArgs),
    /// Pause one or more web components
    #[command(visible_alias = "pc")]
    PauseComponent(super::admin::PauseComponentArgs),
    /// Unpause one or more web components
    #[command(visible_alias = "uc")]
    UnpauseComponent(super::admin::PauseComponentArgs),
    /// generate shell completion code
    Completion(super::admin::CompletionArgs),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AllArg {
    /// Apply to all targets
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Concourse URL to authenticate with
    #[arg(short = 'c', long, value_name = "URL")]
    pub concourse_url: Option<String>,
    /// Skip verification of the endpoint's SSL certificate
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Username for basic auth
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password for basic auth
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Team to authenticate with
    #[arg(short = 'n', long, value_name = "TEAM")]
    pub team_name: Option<String>,
    /// Path to Concourse PEM-encoded CA certificate file
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<String>,
    /// Path to a PEM-encoded client certificate file
    #[arg(long, value_name = "PATH")]
    pub client_cert: Option<String>,
    /// Path to a PEM-encoded client key file
    #[arg(long, value_name = "PATH")]
    pub client_key: Option<String>,
    /// Open browser to the auth endpoint
    #[arg(short = 'b', long)]
    pub open_browser: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Logout of all targets
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync even if versions already match
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Concourse URL to sync with
    #[arg(short = 'c', long, value_name = "URL")]
    pub concourse_url: Option<String>,
    /// Skip verification of the endpoint's SSL certificate
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Path to Concourse PEM-encoded CA certificate file
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<String>,
    /// Path to a PEM-encoded client certificate file
    #[arg(long, value_name = "PATH")]
    pub client_cert: Option<String>,
    /// Path to a PEM-encoded client key file
    #[arg(long, value_name = "PATH")]
    pub client_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct CurlArgs {
    /// Pass query params as normal curl path like path?key=value
    #[arg(value_name = "PATH", required = true)]
    pub path: String,
    /// To pass flags to curl, pass a -- argument, so that fly can distinguish them from its own flags
    #[arg(last = true, value_name = "curl flags")]
    pub rest: Vec<String>,
    /// Print curl command and exit
    #[arg(long)]
    pub print_and_exit: bool,
}

#[derive(Debug, Args)]
pub struct EditTargetArgs {
    /// Update target name
    #[arg(long, value_name = "NAME")]
    pub target_name: Option<String>,
    /// Update concourse URL
    #[arg(short = 'u', long, value_name = "URL")]
    pub concourse_url: Option<String>,
    /// Update concourse URL
    #[arg(short = 'n', long, value_name = "TEAM")]
    pub team_name: Option<String>,
}

/// Vars flags shared by set-pipeline and validate-pipeline.
#[derive(Debug, Args, Default)]
pub struct VarsArgs {
    /// Specify a string value to set for a variable in the pipeline
    #[arg(short = 'v', long = "var", value_name = "[NAME=STRING]")]
    pub var: Vec<String>,
    /// Specify a YAML value to set for a variable in the pipeline
    #[arg(short = 'y', long = "yaml-var", value_name = "[NAME=YAML]")]
    pub yaml_var: Vec<String>,
    /// Variable flag that can be used for filling in template values in configuration from a YAML file
    #[arg(short = 'l', long = "load-vars-from", value_name = "FILE")]
    pub load_vars_from: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SetPipelineArgs {
    /// Pipeline to configure
    #[arg(short = 'p', long, required = true)]
    pub pipeline: String,
    /// Pipeline configuration file, "-" stands for stdin
    #[arg(short = 'c', long, required = true, value_name = "FILE")]
    pub config: String,
    #[command(flatten)]
    pub vars: VarsArgs,
    /// Specify a YAML value to set for an instance variable
    #[arg(short = 'i', long = "instance-var", value_name = "[NAME=YAML]")]
    pub instance_var: Vec<String>,
    /// Skips interactions, uses default values
    #[arg(short = 'n', long)]
    pub non_interactive: bool,
    /// Dry-run mode: show the diff, do not apply
    #[arg(short = 'd', long)]
    pub dry_run: bool,
    /// Validate credential variables against credential manager
    #[arg(long)]
    pub check_creds: bool,
    /// Disable color output
    #[arg(long)]
    pub no_color: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetPipelineArgs {
    /// Get configuration of this pipeline
    #[arg(short = 'p', long, required = true)]
    pub pipeline: String,
    /// Print config as json instead of yaml
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct DestroyPipelineArgs {
    /// Pipeline to destroy
    #[arg(short = 'p', long, required = true)]
    pub pipeline: String,
    /// Destroy pipeline without confirmation
    #[arg(short = 'n', long)]
    pub non_interactive: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct PipelinesArgs {
    /// Show pipelines across all teams
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show archived pipelines
    #[arg(long)]
    pub include_archived: bool,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
    /// Show pipelines for the given team
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct PausedPipelinesArgs {
    /// Show pipelines across all teams
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PipelineOrAllArgs {
    /// Pipeline
    #[arg(short = 'p', long)]
    pub pipeline: Option<String>,
    /// Apply to all pipelines
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Pipeline
    #[arg(short = 'p', long, required = true)]
    pub pipeline: String,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenamePipelineArgs {
    /// Pipeline to rename
    #[arg(short = 'o', long, required = true)]
    pub old_name: String,
    /// Name to set as pipeline name
    #[arg(short = 'n', long, required = true)]
    pub new_name: String,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct OrderPipelinesArgs {
    /// Name of pipeline (can be specified multiple times to provide relative ordering)
    #[arg(short = 'p', long)]
    pub pipeline: Vec<String>,
    /// Order all pipelines alphabetically
    #[arg(short = 'a', long)]
    pub alphabetical: bool,
    /// Name of the team to which the pipelines belong, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct ArchivePipelineArgs {
    /// Pipeline to archive
    #[arg(short = 'p', long)]
    pub pipeline: Option<String>,
    /// Archive all pipelines
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Skips interactions, uses default values
    #[arg(short = 'n', long)]
    pub non_interactive: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidatePipelineArgs {
    /// Pipeline configuration file
    #[arg(short = 'c', long, required = true, value_name = "FILE")]
    pub config: String,
    /// Fail on warnings
    #[arg(short = 's', long)]
    pub strict: bool,
    /// Output templated pipeline to stdout
    #[arg(short = 'o', long)]
    pub output: bool,
    #[command(flatten)]
    pub vars: VarsArgs,
    /// Accepted for compatibility; the across step is always enabled
    #[arg(long, hide = true)]
    pub enable_across_step: bool,
}

#[derive(Debug, Args)]
pub struct FormatPipelineArgs {
    /// Pipeline configuration file
    #[arg(short = 'c', long, required = true, value_name = "FILE")]
    pub config: String,
    /// Do not print the formatted config, overwrite the file instead
    #[arg(short = 'w', long)]
    pub write: bool,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Get jobs in this pipeline
    #[arg(short = 'p', long, required = true)]
    pub pipeline: String,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
    /// Name of the team to which the pipeline belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// Name of a job
    #[arg(short = 'j', long, required = true, value_name = "PIPELINE/JOB")]
    pub job: String,
    /// Name of the team to which the job belongs, if different from the target default
    #[arg(long)]
    pub team: Option<String>,
}

#[derive(Debug, Args)]
pub struct TeamsArgs {
    /// Print authentication configuration
    #[arg(short = 'd', long)]
    pub details: bool,
    /// Print command result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GetTeamArgs {
    /// Get configuration of this team
    #[arg(short = 'n', long, required = true)]
    pub team_name: String,
    /// Print command result as JSON
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenameTeamArgs {
    /// Current team name
    #[arg(short = 'o', long, required = true)]
    pub old_name: String,
    /// New team name
    #[arg(short = 'n', long, required = true)]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct DestroyTeamArgs {
    /// The team to delete
    #[arg(short = 'n', long, required = true)]
    pub team_name: String,
    /// Force apply configuration
    #[arg(long)]
    pub non_interactive: bool,
}

#[derive(Debug, Args)]
pub struct SetTeamArgs {
    /// The team to create or modify
    #[arg(short = 'n', long, required = true)]
    pub team_name: String,
    /// Force apply configuration
    #[arg(long)]
    pub non_interactive: bool,
    /// Configuration file for specifying team params
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<String>,
    /// A whitelisted local concourse user
    #[arg(long, value_name = "USERNAME")]
    pub local_user: Vec<String>,
    #[arg(long)]
    pub github_user: Vec<String>,
    #[arg(long)]
    pub github_org: Vec<String>,
    #[arg(long, value_name = "ORG:TEAM")]
    pub github_team: Vec<String>,
    #[arg(long)]
    pub gitlab_user: Vec<String>,
    #[arg(long)]
    pub gitlab_group: Vec<String>,
    #[arg(long)]
    pub gitea_user: Vec<String>,
    #[arg(long)]
    pub gitea_org: Vec<String>,
    #[arg(long)]
    pub gitea_team: Vec<String>,
    #[arg(long)]
    pub bitbucket_cloud_user: Vec<String>,
    #[arg(long)]
    pub bitbucket_cloud_team: Vec<String>,
    #[arg(long)]
    pub cf_user: Vec<String>,
    #[arg(long)]
    pub cf_org: Vec<String>,
    #[arg(long, value_name = "ORG:SPACE")]
    pub cf_space_with_any_role: Vec<String>,
    #[arg(long, value_name = "ORG:SPACE")]
    pub cf_space_with_developer_role: Vec<String>,
    #[arg(long, value_name = "ORG:SPACE")]
    pub cf_space_with_auditor_role: Vec<String>,
    #[arg(long, value_name = "ORG:SPACE")]
    pub cf_space_with_manager_role: Vec<String>,
    #[arg(long)]
    pub cf_space_guid: Vec<String>,
    #[arg(long, hide = true)]
    pub cf_space: Vec<String>,
    #[arg(long)]
    pub ldap_user: Vec<String>,
    #[arg(long)]
    pub ldap_group: Vec<String>,
    #[arg(long)]
    pub microsoft_user: Vec<String>,
    #[arg(long)]
    pub microsoft_group: Vec<String>,
    #[arg(long)]
    pub oauth_user: Vec<String>,
    #[arg(long)]
    pub oauth_group: Vec<String>,
    #[arg(long)]
    pub oidc_user: Vec<String>,
    #[arg(long)]
    pub oidc_group: Vec<String>,
    #[arg(long)]
    pub saml_user: Vec<String>,
    #[arg(long)]
    pub saml_group: Vec<String>,
}
