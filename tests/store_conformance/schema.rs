//! Migrations against schema.sql, and connecting.

use super::*;

/// Tables and their columns declared in schema.sql (a light parse of our own formatting:
/// one column per line, four spaces in).
fn schema_sql_tables() -> Vec<(String, Vec<String>)> {
    let schema = include_str!("../../schema.sql");
    let mut tables = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in schema.lines() {
        if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            let name = rest.split_whitespace().next().expect("table name");
            current = Some((name.to_string(), Vec::new()));
        } else if line.starts_with(");") {
            tables.extend(current.take());
        } else if let (Some((_, columns)), Some(column)) =
            (current.as_mut(), line.strip_prefix("    "))
        {
            let word = column.split_whitespace().next().unwrap_or("");
            let constraint = ["UNIQUE", "PRIMARY", "--", "FOREIGN", "CHECK"]
                .iter()
                .any(|k| word.starts_with(k));
            if !word.is_empty() && !constraint && !column.starts_with(' ') {
                columns.push(word.to_string());
            }
        }
    }
    tables.sort();
    tables
}

#[tokio::test]
async fn the_embedded_schema_mirrors_schema_sql_table_for_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concourse.db");
    drop(
        open_embedded(&path)
            .await
            .expect("opening the embedded store"),
    );
    drop(open_embedded(&path).await.expect("opening it again"));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        "each migration is recorded once"
    );
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN \
             ('sqlite_sequence', 'schema_migrations', 'sequences', 'table_versions') \
             ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in names {
        let columns: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{name}') ORDER BY cid"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.push((name, columns));
    }
    assert_eq!(tables, schema_sql_tables());
}

/// Tables, columns, indexes and sequences of a PostgreSQL schema, with the schema's name
/// taken out so two schemas compare.
async fn describe_schema(client: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, \
             COALESCE(column_default::text, '') \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'schema_migrations' \
             ORDER BY table_name, ordinal_position",
            &[&schema],
        )
        .await
        .unwrap()
    {
        let cells: Vec<String> = (0..5).map(|i| row.get::<_, String>(i)).collect();
        lines.push(format!("column {}", cells.join(" ")));
    }
    for row in client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'schema_migrations' \
             ORDER BY indexname",
            &[&schema],
        )
        .await
        .unwrap()
    {
        lines.push(format!("index {}", row.get::<_, String>(0)));
    }
    for row in client
        .query(
            "SELECT sequence_name::text FROM information_schema.sequences WHERE sequence_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
    {
        lines.push(format!("sequence {}", row.get::<_, String>(0)));
    }
    for row in client
        .query(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .unwrap()
    {
        lines.push(format!(
            "constraint {} {}",
            row.get::<_, String>(0),
            row.get::<_, String>(1)
        ));
    }
    lines
        .into_iter()
        .map(|l| l.replace(&format!("{schema}."), ""))
        .filter(|l| !l.contains("schema_migrations"))
        .collect()
}

#[tokio::test]
async fn migrating_an_empty_postgres_schema_yields_schema_sql() {
    let Some(migrated) = require_postgres("migrating_an_empty_postgres_schema_yields_schema_sql")
    else {
        return;
    };
    let Some(declared) = require_postgres("migrating_an_empty_postgres_schema_yields_schema_sql")
    else {
        return;
    };
    let migrated = SchemaGuard::new(migrated);
    let declared = SchemaGuard::new(declared);
    drop(
        connect_postgres(migrated.config())
            .await
            .expect("migrating"),
    );
    // Migrating again is a no-op.
    drop(
        connect_postgres(migrated.config())
            .await
            .expect("migrating again"),
    );

    let config = declared.config();
    let schema = config.schema.clone().unwrap();
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host)
        .port(config.port)
        .user(&config.user)
        .dbname(&config.database);
    pg.options(format!("-c search_path={schema}"));
    let (client, connection) = pg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    client
        .batch_execute(include_str!("../../schema.sql"))
        .await
        .expect("applying schema.sql");

    let migrated_schema = migrated.config().schema.clone().unwrap();
    let from_migrations = describe_schema(&client, &migrated_schema).await;
    let from_schema_sql = describe_schema(&client, &schema).await;
    assert!(from_schema_sql.len() > 50, "{from_schema_sql:?}");
    assert_eq!(from_migrations, from_schema_sql);
    let versions: Vec<i64> = client
        .query(
            &format!("SELECT version FROM {migrated_schema}.schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        "each migration is recorded once"
    );
}

#[tokio::test]
async fn a_failed_postgres_connection_names_the_address() {
    let config = PostgresConfig {
        host: "127.0.0.1".into(),
        port: 1,
        user: "postgres".into(),
        database: "atc".into(),
        sslmode: "disable".into(),
        ..PostgresConfig::default()
    };
    let err = connect_postgres(&config)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(
        format!("{err:#}").contains("postgres at 127.0.0.1:1/atc"),
        "{err:#}"
    );
}

#[tokio::test]
async fn postgres_tls_modes_are_refused_clearly() {
    let config = PostgresConfig {
        host: "db.example".into(),
        port: 5432,
        database: "atc".into(),
        sslmode: "verify-full".into(),
        ..PostgresConfig::default()
    };
    let err = connect_postgres(&config)
        .await
        .err()
        .expect("TLS is not supported yet");
    assert_eq!(
        format!("{err:#}"),
        "postgres at db.example:5432/atc: sslmode \"verify-full\" is not supported yet (TLS to \
         PostgreSQL is not implemented); use --postgres-sslmode=disable"
    );
}

#[tokio::test]
async fn the_embedded_store_opens_a_directory_as_its_default_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_embedded(dir.path())
        .await
        .expect("opening a directory");
    team(&store, "main").await;
    drop(store);
    assert!(dir.path().join("concourse.db").exists());
    let reopened = open_embedded(&dir.path().join("concourse.db"))
        .await
        .unwrap();
    assert!(reopened.team("main").await.unwrap().is_some());
}
