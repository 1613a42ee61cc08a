//! Team commands: `teams`, `get-team`, `set-team`, `rename-team`, `destroy-team`.

use super::cli::{DestroyTeamArgs, GetTeamArgs, RenameTeamArgs, SetTeamArgs, TeamsArgs};
use super::client::{fail, seg, FlyError, Target};
use super::setpipeline::show_warnings;
use super::table::{Cell, Table};
use super::{print_json, ui, yaml, Global};
use crate::config;
use crate::proto::api::{self, ConfigWarning, RoleAuth, Team, TeamAuth};
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::io::{BufRead, Write};

async fn connect(g: &Global) -> Result<Target> {
    let target = Target::load(g.target.as_deref(), g.verbose)?;
    target.validate().await?;
    Ok(target)
}

fn detail_rows(table: &mut Table, team: &Team) {
    for (role, auth) in team.auth.iter().flatten() {
        let users = if auth.users.is_empty() && auth.groups.is_empty() {
            Cell::colored("all", ui::FAINT)
        } else if auth.users.is_empty() {
            Cell::none()
        } else {
            Cell::new(auth.users.join(","))
        };
        let groups = if auth.groups.is_empty() {
            Cell::none()
        } else {
            Cell::new(auth.groups.join(","))
        };
        table.push(vec![format!("{}/{role}", team.name).into(), users, groups]);
    }
}

pub async fn teams(g: &Global, a: &TeamsArgs) -> Result<()> {
    let t = connect(g).await?;
    let teams: Vec<Team> = t.client.get_json("/api/v1/teams", &[]).await?;
    if a.json {
        return print_json(&teams);
    }
    let mut table = if a.details {
        Table::new(&["name/role", "users", "groups"])
    } else {
        Table::new(&["name"])
    };
    for team in &teams {
        if a.details {
            detail_rows(&mut table, team);
        } else {
            table.push(vec![team.name.clone().into()]);
        }
    }
    table.sort_by_first_column();
    table.print(g.print_table_headers);
    Ok(())
}

pub async fn get_team(g: &Global, a: &GetTeamArgs) -> Result<()> {
    let t = connect(g).await?;
    let team = t.find_team(&a.team_name).await?;
    if a.json {
        return print_json(&team);
    }
    let mut table = Table::new(&["name/role", "users", "groups"]);
    detail_rows(&mut table, &team);
    table.sort_by_first_column();
    table.print(g.print_table_headers);
    Ok(())
}

fn lower_prefixed(prefix: &str, values: &[String], suffix: &str) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{prefix}:{}{suffix}", v.to_lowercase()))
        .collect()
}

/// Everything given as flags lands in role `owner`.
fn auth_from_flags(a: &SetTeamArgs) -> TeamAuth {
    let mut owner = RoleAuth::default();
    let users = [
        ("local", &a.local_user),
        ("github", &a.github_user),
        ("gitlab", &a.gitlab_user),
        ("gitea", &a.gitea_user),
        ("bitbucket-cloud", &a.bitbucket_cloud_user),
        ("cf", &a.cf_user),
        ("ldap", &a.ldap_user),
        ("microsoft", &a.microsoft_user),
        ("oauth", &a.oauth_user),
        ("oidc", &a.oidc_user),
        ("saml", &a.saml_user),
    ];
    for (prefix, values) in users {
        owner.users.extend(lower_prefixed(prefix, values, ""));
    }
    let groups: [(&str, &Vec<String>, &str); 17] = [
        ("github", &a.github_org, ""),
        ("github", &a.github_team, ""),
        ("gitlab", &a.gitlab_group, ""),
        ("gitea", &a.gitea_org, ""),
        ("gitea", &a.gitea_team, ""),
        ("bitbucket-cloud", &a.bitbucket_cloud_team, ""),
        ("cf", &a.cf_org, ""),
        ("cf", &a.cf_space_with_any_role, ""),
        ("cf", &a.cf_space_with_developer_role, ":developer"),
        ("cf", &a.cf_space_with_auditor_role, ":auditor"),
        ("cf", &a.cf_space_with_manager_role, ":manager"),
        ("cf", &a.cf_space_guid, ""),
        ("cf", &a.cf_space, ":developer"),
        ("ldap", &a.ldap_group, ""),
        ("microsoft", &a.microsoft_group, ""),
        ("oauth", &a.oauth_group, ""),
        ("oidc", &a.oidc_group, ""),
    ];
    for (prefix, values, suffix) in groups {
        owner.groups.extend(lower_prefixed(prefix, values, suffix));
    }
    owner
        .groups
        .extend(lower_prefixed("saml", &a.saml_group, ""));
    let mut auth = TeamAuth::new();
    if !owner.users.is_empty() || !owner.groups.is_empty() {
        auth.insert("owner".into(), owner);
    }
    auth
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The `roles:` file of auth.md §4.3.
fn auth_from_file(text: &str) -> Result<TeamAuth> {
    let doc = yaml::parse(text).map_err(|e| anyhow!("failed to parse team config: {e}"))?;
    let mut auth = TeamAuth::new();
    for role in doc
        .get("roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = role
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("role without a name in team config"))?;
        let mut ra = RoleAuth::default();
        for (connector, fields) in role.as_object().into_iter().flatten() {
            if connector == "name" {
                continue;
            }
            let prefix = if connector == "cloudfoundry" {
                "cf"
            } else {
                connector.as_str()
            };
            ra.users
                .extend(lower_prefixed(prefix, &strings(fields.get("users")), ""));
            for (key, suffix) in [
                ("groups", ""),
                ("orgs", ""),
                ("teams", ""),
                ("spaces", ":developer"),
                ("spaces_with_any_role", ""),
                ("spaces_with_developer_role", ":developer"),
                ("spaces_with_auditor_role", ":auditor"),
                ("spaces_with_manager_role", ":manager"),
                ("space_guids", ""),
            ] {
                ra.groups
                    .extend(lower_prefixed(prefix, &strings(fields.get(key)), suffix));
            }
        }
        if !ra.users.is_empty() || !ra.groups.is_empty() {
            auth.insert(name.to_string(), ra);
        }
    }
    Ok(auth)
}

fn print_auth(auth: &TeamAuth) {
    let tty = ui::stdout_is_tty();
    let none = ui::paint("none", ui::FAINT, tty);
    for (role, ra) in auth {
        println!();
        println!("role {}:", ui::paint(role, ui::BOLD, tty));
        for (i, (label, list)) in [("users", &ra.users), ("groups", &ra.groups)]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                println!();
            }
            println!("  {label}:");
            if list.is_empty() {
                println!("    {none}");
            }
            for x in list {
                println!("  - {x}");
            }
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct SetTeamResponse {
    #[serde(default)]
    warnings: Vec<ConfigWarning>,
}

pub async fn set_team(g: &Global, a: &SetTeamArgs) -> Result<()> {
    if a.team_name.contains('/') {
        bail!("team name cannot contain '/'");
    }
    let warnings: Vec<ConfigWarning> = config::identifier_warning("team", &a.team_name)
        .into_iter()
        .collect();
    let t = connect(g).await?;
    let auth = match &a.config {
        Some(path) => auth_from_file(&String::from_utf8_lossy(&super::read_path(path)?))?,
        None => auth_from_flags(a),
    };
    if auth.is_empty() {
        bail!("auth config for the team does not have users and groups configured");
    }
    println!(
        "setting team: {}",
        ui::paint(&a.team_name, ui::BOLD, ui::stdout_is_tty())
    );
    print_auth(&auth);
    show_warnings(&warnings);
    if !a.non_interactive && !ui::confirm("\napply team configuration?") {
        return Err(fail("bailing out"));
    }
    let body = Team {
        auth: Some(auth),
        ..Default::default()
    };
    let resp = t
        .client
        .send(
            t.client
                .put(&format!("/api/v1/teams/{}", seg(&a.team_name)))
                .json(&body),
        )
        .await?;
    let parsed: SetTeamResponse = serde_json::from_slice(&resp.body).unwrap_or_default();
    show_warnings(&parsed.warnings);
    if resp.status.as_u16() == 201 {
        println!("team created");
    } else {
        println!("team updated");
    }
    Ok(())
}

pub async fn rename_team(g: &Global, a: &RenameTeamArgs) -> Result<()> {
    if a.old_name.contains('/') {
        bail!("old team name cannot contain '/'");
    }
    if a.new_name.contains('/') {
        bail!("new team name cannot contain '/'");
    }
    let t = connect(g).await?;
    let body = api::RenameRequest {
        name: a.new_name.clone(),
    };
    match t
        .client
        .send(
            t.client
                .put(&format!("/api/v1/teams/{}/rename", seg(&a.old_name)))
                .json(&body),
        )
        .await
    {
        Ok(resp) => {
            let saved: api::SaveConfigResponse =
                serde_json::from_slice(&resp.body).unwrap_or_default();
            show_warnings(&saved.warnings);
            println!("Team successfully renamed to {}", a.new_name);
            Ok(())
        }
        Err(FlyError::NotFound(_)) => Err(fail(format!("Team '{}' not found\n", a.old_name))),
        Err(e) => Err(e.into()),
    }
}

pub async fn destroy_team(g: &Global, a: &DestroyTeamArgs) -> Result<()> {
    let t = connect(g).await?;
    let name = &a.team_name;
    println!("!!! this will remove all data for team `{name}`");
    println!();
    if !a.non_interactive {
        print!("please type the team name to confirm: ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if line.trim_end_matches(['\r', '\n']) != name {
            bail!("incorrect team name; bailing out");
        }
    }
    let path = format!("/api/v1/teams/{}", seg(name));
    match t
        .client
        .send(t.client.request(reqwest::Method::DELETE, &path))
        .await
    {
        Ok(_) => {
            println!();
            println!("`{name}` deleted");
            Ok(())
        }
        Err(FlyError::Forbidden(_)) => {
            println!();
            println!(
                "{}",
                ui::paint(
                    &format!("could not destroy `{name}`"),
                    ui::RED,
                    ui::stdout_is_tty()
                )
            );
            println!();
            println!("either your team is not an admin or it is the last admin team");
            Err(FlyError::Exit(1).into())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn team_config_file_maps_connectors_to_prefixed_users_and_groups() {
        let auth = auth_from_file(
            "roles:\n- name: owner\n  local: {users: [Admin]}\n  github: {users: [alice], orgs: [acme], teams: ['acme:ci']}\n- name: viewer\n  cf: {spaces_with_developer_role: ['o:s']}\n- name: member\n",
        )
        .unwrap();
        assert_eq!(auth["owner"].users, vec!["local:admin", "github:alice"]);
        assert_eq!(auth["owner"].groups, vec!["github:acme", "github:acme:ci"]);
        assert_eq!(auth["viewer"].groups, vec!["cf:o:s:developer"]);
        assert!(!auth.contains_key("member"));
    }

    #[test]
    fn flags_all_land_in_owner() {
        let args = super::super::cli::FlyArgs::try_parse_from([
            "fly",
            "set-team",
            "-n",
            "x",
            "--local-user",
            "Bob",
            "--github-team",
            "org:team",
            "--cf-space-with-auditor-role",
            "o:s",
        ])
        .unwrap();
        let Some(super::super::cli::Command::SetTeam(st)) = args.command else {
            panic!("set-team")
        };
        let auth = auth_from_flags(&st);
        assert_eq!(auth.len(), 1);
        assert_eq!(auth["owner"].users, vec!["local:bob"]);
        assert_eq!(
            auth["owner"].groups,
            vec!["github:org:team", "cf:o:s:auditor"]
        );
    }
}
