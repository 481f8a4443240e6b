"""Budgets and their reports: check measured figures against the recipe's limits."""

from edgepack.gate.budgets import BudgetResult, check_budgets, measurements_from_manifest

__all__ = ["BudgetResult", "check_budgets", "measurements_from_manifest"]
