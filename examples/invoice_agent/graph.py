"""The invoice agent's graph: check the invoice, ask Signoff, then pay or hold.

No LLM: the confidence comes from plain checks against the (tiny, made-up) vendor master
data below. The payment the agent proposes is the action Signoff routes; a reviewer may
modify its payload (say, the amount), and `pay` uses the payload of the verdict, never the
one the agent first proposed.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from signoff_client.langgraph import SignoffGate, Verdict

VENDORS: dict[str, dict[str, Any]] = {
    "ACME": {"iban": "DE89370400440532013000", "orders": {"PO-77": 4200.00, "PO-78": 900.00}},
    "Paper Co": {"iban": "GB33BUKB20201555555555", "orders": {"PO-12": 120.00}},
}
CURRENCIES = ("USD", "EUR")
REQUIRED = ("number", "vendor", "po_number", "amount", "currency", "iban", "due_date")


class InvoiceState(TypedDict, total=False):
    invoice: dict[str, Any]
    problems: list[str]
    confidence: float
    action: dict[str, Any]
    verdict: dict[str, Any]
    status: str
    payment: dict[str, Any]
    note: str


def thread_id(invoice_number: str) -> str:
    """One LangGraph thread (and Signoff thread) per invoice."""
    return f"invoice-{invoice_number}"


def check(invoice: dict[str, Any]) -> list[str]:
    """What is wrong with the invoice; each problem costs confidence."""
    problems = [f"missing {key}" for key in REQUIRED if not invoice.get(key)]
    vendor = VENDORS.get(str(invoice.get("vendor")))
    if vendor is None:
        problems.append(f"unknown vendor {invoice.get('vendor')!r}")
        return problems
    if invoice.get("iban") and invoice["iban"] != vendor["iban"]:
        problems.append("bank account differs from the vendor's record")
    ordered = vendor["orders"].get(invoice.get("po_number"))
    if ordered is None:
        problems.append(f"no purchase order {invoice.get('po_number')} for {invoice['vendor']}")
    elif abs(float(invoice.get("amount") or 0) - ordered) > 0.005:
        problems.append(f"amount differs from the purchase order ({ordered:,.2f})")
    if invoice.get("currency") not in CURRENCIES:
        problems.append(f"unexpected currency {invoice.get('currency')!r}")
    return problems


def check_invoice(state: InvoiceState) -> InvoiceState:
    invoice = state["invoice"]
    problems = check(invoice)
    amount = float(invoice.get("amount") or 0)
    currency = str(invoice.get("currency") or "")
    action = {
        "kind": "payment",
        "summary": f"Pay {invoice.get('number')} to {invoice.get('vendor')}: "
        f"{amount:,.2f} {currency}",
        "payload": {
            "invoice": invoice.get("number"),
            "vendor": invoice.get("vendor"),
            "amount": amount,
            "currency": currency,
            "iban": invoice.get("iban"),
        },
    }
    return {
        "problems": problems,
        "confidence": round(max(0.05, 1.0 - 0.25 * len(problems)), 2),
        "action": action,
    }


def build_graph(
    gate: SignoffGate, checkpointer: BaseCheckpointSaver[Any]
) -> CompiledStateGraph[InvoiceState, None, InvoiceState, InvoiceState]:
    """The agent's graph; compile it afresh in every process over the same checkpointer."""

    async def approval_gate(state: InvoiceState) -> InvoiceState:
        # Everything sent is read from the checkpointed state, so the replay of this node on
        # resume sends the same body and gets the original request back.
        invoice, action = state["invoice"], state["action"]
        problems = state.get("problems", [])
        verdict = await gate.ask(
            action,
            state["confidence"],
            amount=action["payload"]["amount"],
            currency=action["payload"]["currency"],
            labels={"vendor": str(invoice.get("vendor"))},
            context={
                "summary": action["summary"],
                "goal": "Pay supplier invoices that match a purchase order",
                "recommendation": "pay" if not problems else "check the problems first",
                "failure_reason": "; ".join(problems) or None,
                "transaction": invoice,
            },
        )
        return {"verdict": verdict.model_dump()}

    def after_gate(state: InvoiceState) -> str:
        return "pay" if state["verdict"]["approved"] else "hold"

    def pay(state: InvoiceState) -> InvoiceState:
        verdict = Verdict.model_validate(state["verdict"])
        payload = verdict.payload  # the reviewer's edit, if there was one
        approvers = [v["name"] for v in verdict.votes if v["verdict"] in ("approve", "modify")]
        return {
            "status": "paid",
            "payment": {
                "invoice": payload.get("invoice"),
                "vendor": payload.get("vendor"),
                "amount": payload.get("amount"),
                "currency": payload.get("currency"),
                "iban": payload.get("iban"),
                "request_id": verdict.request_id,
                "action_sha256": verdict.action_sha256,
                "signoff_status": verdict.status,
                "approved_by": approvers,
            },
            "note": verdict.rationale,
        }

    def hold(state: InvoiceState) -> InvoiceState:
        verdict = Verdict.model_validate(state["verdict"])
        return {
            "status": f"held ({verdict.status})",
            "note": verdict.rationale or f"Signoff answered {verdict.status}",
        }

    builder = StateGraph(InvoiceState)
    builder.add_node("check_invoice", check_invoice)
    builder.add_node("approval_gate", approval_gate)
    builder.add_node("pay", pay)
    builder.add_node("hold", hold)
    builder.add_edge(START, "check_invoice")
    builder.add_edge("check_invoice", "approval_gate")
    builder.add_conditional_edges("approval_gate", after_gate, ["pay", "hold"])
    builder.add_edge("pay", END)
    builder.add_edge("hold", END)
    return builder.compile(checkpointer=checkpointer)


def describe(values: InvoiceState) -> str:
    """One line on where an invoice stands."""
    invoice = values.get("invoice", {})
    number = invoice.get("number", "?")
    payment = values.get("payment")
    if values.get("status") == "paid" and payment:
        who = ", ".join(payment["approved_by"]) or "Signoff's policy, at once"
        line = (
            f"{number} paid: {payment['amount']:,.2f} {payment['currency']} to "
            f"{payment['vendor']} (approved by {who}"
        )
        return line + (f": {values['note']})" if values.get("note") else ")")
    if values.get("status"):
        return f"{number} {values['status']}: {values.get('note', '')}".rstrip(": ")
    return f"{number}: waiting for a verdict"
