//! Many rows in one bound parameter: a batch's rows are serialised as one JSON array of arrays and
//! read back inside the statement as a typed table, so that a set-based statement costs one round
//! trip whatever the batch size, on both backends (`sqlx::Any` binds no arrays).
//!
//! PostgreSQL reads it with `json_array_elements`, SQLite with `json_each`; both plan the statement
//! once per connection (sqlx caches prepared statements by their text, and the text depends only
//! on the columns).

use serde::Serialize;

use super::Backend;

/// A column's SQL type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Col {
    /// 64-bit integer (`BIGINT`, SQLite `INTEGER`).
    Int,
    /// Double precision.
    Real,
    /// Text.
    Text,
}

/// The subquery `(SELECT … ) AS t` that reads parameter `$param` as rows with the named columns,
/// element `k` of each row array being column `k`.
pub(crate) fn table(backend: Backend, param: usize, cols: &[(&str, Col)]) -> String {
    let mut select = String::with_capacity(40 * cols.len() + 64);
    for (k, (name, col)) in cols.iter().enumerate() {
        if k > 0 {
            select.push_str(", ");
        }
        let expr = match (backend, col) {
            (Backend::Postgres, Col::Int) => format!("(v->>{k})::bigint"),
            (Backend::Postgres, Col::Real) => format!("(v->>{k})::float8"),
            (Backend::Postgres, Col::Text) => format!("(v->>{k})"),
            (Backend::Sqlite, _) => format!("json_extract(value, '$[{k}]')"),
        };
        select.push_str(&expr);
        select.push_str(" AS ");
        select.push_str(name);
    }
    match backend {
        Backend::Postgres => {
            format!("(SELECT {select} FROM json_array_elements(${param}::json) AS r(v)) AS t")
        }
        Backend::Sqlite => format!("(SELECT {select} FROM json_each(${param})) AS t"),
    }
}

/// The rows serialised for [`table`] (tuples serialise as arrays).
pub(crate) fn encode<R: Serialize>(rows: &[R]) -> String {
    // Serialising plain tuples of numbers, strings and options cannot fail.
    serde_json::to_string(rows).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_column_in_order() {
        let sql = table(Backend::Postgres, 2, &[("a", Col::Int), ("b", Col::Text)]);
        assert_eq!(
            sql,
            "(SELECT (v->>0)::bigint AS a, (v->>1) AS b FROM json_array_elements($2::json) AS r(v)) AS t"
        );
        let sql = table(Backend::Sqlite, 1, &[("a", Col::Real)]);
        assert_eq!(
            sql,
            "(SELECT json_extract(value, '$[0]') AS a FROM json_each($1)) AS t"
        );
        assert_eq!(encode(&[(1i64, "x", None::<f64>)]), r#"[[1,"x",null]]"#);
    }
}
