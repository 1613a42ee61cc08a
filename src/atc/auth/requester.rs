//! The requester of an API call and the roles it holds (auth.md §4–5).

use super::TSA_CLIENT_ID;
use crate::db::TeamRow;
use serde_json::Value;

/// Team roles, weakest first, so `>=` means "at least".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    PipelineOperator,
    Member,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "pipeline-operator" => Role::PipelineOperator,
            "member" => Role::Member,
            "owner" => Role::Owner,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::PipelineOperator => "pipeline-operator",
            Role::Member => "member",
            Role::Owner => "owner",
        }
    }
}

/// Who is calling. Anonymous callers carry no claims.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub claims: Option<Value>,
    /// Every team, loaded once per request: roles and the admin flag derive from them.
    teams: Vec<TeamRow>,
}

impl Requester {
    pub fn new(claims: Option<Value>, teams: Vec<TeamRow>) -> Self {
        Requester { claims, teams }
    }

    pub fn is_authenticated(&self) -> bool {
        self.claims.is_some()
    }

    fn claim_str(&self, path: &[&str]) -> String {
        let mut v = match &self.claims {
            Some(c) => c,
            None => return String::new(),
        };
        for p in path {
            match v.get(p) {
                Some(next) => v = next,
                None => return String::new(),
            }
        }
        v.as_str().unwrap_or_default().to_string()
    }

    pub fn user_id(&self) -> String {
        self.claim_str(&["federated_claims", "user_id"])
    }

    pub fn connector(&self) -> String {
        let c = self.claim_str(&["federated_claims", "connector_id"]);
        // Upstream writes the cloudfoundry connector as `cf` in team auth.
        if c == "cloudfoundry" {
            "cf".into()
        } else {
            c
        }
    }

    pub fn user_name(&self) -> String {
        let preferred = self.claim_str(&["preferred_username"]);
        if preferred.is_empty() {
            self.claim_str(&["name"])
        } else {
            preferred
        }
    }

    pub fn display_user_id(&self) -> String {
        let name = self.user_name();
        if name.is_empty() {
            self.user_id()
        } else {
            name
        }
    }

    pub fn sub(&self) -> String {
        self.claim_str(&["sub"])
    }

    pub fn email(&self) -> String {
        self.claim_str(&["email"])
    }

    pub fn name(&self) -> String {
        self.claim_str(&["name"])
    }

    fn groups(&self) -> Vec<String> {
        self.claims
            .as_ref()
            .and_then(|c| c.get("groups"))
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A system requester is the TSA (claim `aud` holds the TSA client id).
    pub fn is_system(&self) -> bool {
        match self.claims.as_ref().and_then(|c| c.get("aud")) {
            Some(Value::String(a)) => a == TSA_CLIENT_ID,
            _ => false,
        }
    }

    /// Roles held on a team, per upstream's matching rules.
    pub fn roles_on(&self, team: &TeamRow) -> Vec<Role> {
        if !self.is_authenticated() {
            return Vec::new();
        }
        let connector = self.connector();
        let ids = [
            format!("{connector}:{}", self.user_id()).to_lowercase(),
            format!("{connector}:{}", self.user_name()).to_lowercase(),
        ];
        let groups: Vec<String> = self
            .groups()
            .iter()
            .map(|g| format!("{connector}:{g}").to_lowercase())
            .collect();
        let mut roles = Vec::new();
        for (name, auth) in &team.auth {
            let Some(role) = Role::parse(name) else {
                continue;
            };
            // Legacy rule: a role with neither users nor groups matches everyone.
            let everyone = auth.users.is_empty() && auth.groups.is_empty();
            let user_match = auth.users.iter().any(|u| ids.contains(&u.to_lowercase()));
            let group_match = auth
                .groups
                .iter()
                .any(|g| groups.contains(&g.to_lowercase()));
            if everyone || user_match || group_match {
                roles.push(role);
            }
        }
        roles.sort();
        roles
    }

    pub fn best_role_on(&self, team: &TeamRow) -> Option<Role> {
        self.roles_on(team).into_iter().max()
    }

    /// Admin = owner of a team flagged admin (only `main`).
    pub fn is_admin(&self) -> bool {
        self.teams
            .iter()
            .any(|t| t.admin && self.roles_on(t).contains(&Role::Owner))
    }

    /// Whether the requester holds at least `role` on `team`, or is an admin.
    pub fn has_role(&self, team: &TeamRow, role: Role) -> bool {
        self.is_admin() || self.best_role_on(team).is_some_and(|r| r >= role)
    }

    /// Ids of the teams the requester holds any role on (admin or not).
    pub fn member_team_ids(&self) -> Vec<i64> {
        self.teams
            .iter()
            .filter(|t| !self.roles_on(t).is_empty())
            .map(|t| t.id)
            .collect()
    }

    pub fn teams(&self) -> &[TeamRow] {
        &self.teams
    }

    /// The team called `name`, as read for this request (routes need not read it again).
    pub fn team(&self, name: &str) -> Option<&TeamRow> {
        self.teams.iter().find(|t| t.name == name)
    }

    /// `team name → [roles]` for `GET /api/v1/user`.
    pub fn team_roles(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.teams
            .iter()
            .filter_map(|t| {
                let roles = self.roles_on(t);
                (!roles.is_empty()).then(|| {
                    (
                        t.name.clone(),
                        roles.iter().rev().map(|r| r.as_str().to_string()).collect(),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::api::RoleAuth;
    use serde_json::json;

    fn team(name: &str, admin: bool, role: &str, users: &[&str]) -> TeamRow {
        let mut auth = crate::proto::api::TeamAuth::new();
        auth.insert(
            role.into(),
            RoleAuth {
                users: users.iter().map(|s| s.to_string()).collect(),
                groups: vec![],
            },
        );
        TeamRow {
            id: 1,
            name: name.into(),
            admin,
            auth,
        }
    }

    fn local(user: &str) -> Value {
        json!({"aud": "fly", "preferred_username": user, "name": user,
               "federated_claims": {"connector_id": "local", "user_id": user}})
    }

    #[test]
    fn owner_of_main_is_admin_and_matching_ignores_case() {
        let teams = vec![
            team("main", true, "owner", &["local:Admin"]),
            team("dev", false, "viewer", &["local:bob"]),
        ];
        let admin = Requester::new(Some(local("admin")), teams.clone());
        assert!(admin.is_admin());
        assert!(admin.has_role(&teams[1], Role::Owner));
        let bob = Requester::new(Some(local("bob")), teams.clone());
        assert!(!bob.is_admin());
        assert!(bob.has_role(&teams[1], Role::Viewer));
        assert!(!bob.has_role(&teams[1], Role::Member));
        assert!(!bob.has_role(&teams[0], Role::Viewer));
        assert_eq!(
            bob.team_roles().get("dev"),
            Some(&vec!["viewer".to_string()])
        );
        let anon = Requester::new(None, teams.clone());
        assert!(!anon.has_role(&teams[1], Role::Viewer));
    }
}
