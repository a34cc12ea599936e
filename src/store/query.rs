//! Paging and filters of the list operations, with the original's semantics: pages numbered
//! from 1, 100 rows by default, `total` = every matching row, a page past the end is empty.

use super::records::{AuditEntity, CallStatus, McpType};
use super::time::Timestamp;

/// The largest page a list returns (the original has no cap; this keeps one answer bounded).
pub const MAX_PAGE_LIMIT: u32 = 10_000;

/// Which slice of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based (`pageNumber`); 0 is read as 1.
    pub number: u32,
    /// Rows per page (`limit`); 0 is read as the default 100, more than `MAX_PAGE_LIMIT` as
    /// `MAX_PAGE_LIMIT`.
    pub limit: u32,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            number: 1,
            limit: 100,
        }
    }
}

impl Page {
    pub fn new(number: u32, limit: u32) -> Self {
        Self { number, limit }
    }

    /// The limit actually applied.
    pub fn size(&self) -> u32 {
        match self.limit {
            0 => 100,
            n => n.min(MAX_PAGE_LIMIT),
        }
    }

    /// The page number actually applied.
    pub fn number(&self) -> u32 {
        self.number.max(1)
    }

    /// How many matching rows come before this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.number() - 1) * u64::from(self.size())
    }

    /// Cuts this page out of every matching row in order (backends that cannot skip).
    pub fn slice<T>(&self, all: Vec<T>) -> Paged<T> {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(self.offset() as usize)
            .take(self.size() as usize)
            .collect();
        self.paged(items, total)
    }

    /// A page of `items` out of `total` matching rows.
    pub fn paged<T>(&self, items: Vec<T>, total: u64) -> Paged<T> {
        Paged {
            items,
            total,
            page_number: self.number(),
            page_size: self.size(),
        }
    }
}

/// One page of a list: the GraphQL list types' `pageSize`, `pageNumber`, `total` and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Every matching row, on every page.
    pub total: u64,
    pub page_number: u32,
    /// The limit applied (not the number of rows returned, as in the original).
    pub page_size: u32,
}

/// Filters of `list_functions` (the original's `mcpFunctionList` arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionFilter {
    pub mcp_type: Option<McpType>,
    /// Substring of `description`.
    pub description_contains: Option<String>,
    /// Equality filters.
    pub module_name: Option<String>,
    pub class_name: Option<String>,
    pub function_name: Option<String>,
    /// O2's `status`: `Some(true)` only enabled, `Some(false)` only disabled.
    pub enabled: Option<bool>,
}

/// Filters of `list_modules` (`mcpModuleList`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleFilter {
    /// Substring of `module_name` (the one filter the original's list really applies).
    pub module_name_contains: Option<String>,
    /// Equality on `package_name` (the `package_name-index`).
    pub package_name: Option<String>,
}

/// Filters of `list_settings` (`mcpSettingList`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingFilter {
    /// Substring of `setting_id`.
    pub setting_id_contains: Option<String>,
}

/// Filters of `list_calls` (`mcpFunctionCallList`); rows come newest `updated_at` first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub mcp_type: Option<McpType>,
    pub name: Option<String>,
    pub status: Option<CallStatus>,
    /// `updated_at > updated_after` (exclusive, as the original's `updatedAtGt`).
    pub updated_after: Option<Timestamp>,
    /// `updated_at < updated_before` (`updatedAtLt`).
    pub updated_before: Option<Timestamp>,
}

/// Filters of `list_audit`; entries come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub entity: Option<AuditEntity>,
    /// The record's key (function name, module name, setting id); needs `entity` to be exact.
    pub key: Option<String>,
}
