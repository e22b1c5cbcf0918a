"""Query and schedule forms: they build QueryParams and report bad combinations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from nodes.models import RemoteNode, StoreNode
from qr.models import ScheduledQuery, Status
from qr.params import ParamError, QueryParams, parse_terms

MODALITY_CHOICES = [
    ("CT", "CT"), ("MG", "Mammography (MG)"), ("FL", "Fluoroscopy (RF, XA)"),
    ("DX", "Radiography (DX, CR, PX)"), ("NM", "Nuclear medicine (NM, PT)"),
]
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TERMS_HELP = "Comma-separated, case-insensitive parts of words; empty = no filter."


def _yesterday() -> dt.date:
    return dt.date.today() - dt.timedelta(days=1)


class QueryOptions(forms.Form):
    remote = forms.ModelChoiceField(RemoteNode.objects.all(), label="Remote node",
                                    empty_label=None)
    store = forms.ModelChoiceField(StoreNode.objects.all(), label="Retrieve to store node",
                                   empty_label=None)
    modalities = forms.MultipleChoiceField(
        choices=MODALITY_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    sr_only = forms.BooleanField(
        label="Dose SRs only (the remote holds SRs without their images)", required=False
    )
    desc_include = forms.CharField(label="Study description includes", required=False,
                                   help_text=TERMS_HELP)
    desc_exclude = forms.CharField(label="Study description excludes", required=False,
                                   help_text=TERMS_HELP + " Exclude wins over include.")
    station_include = forms.CharField(label="Station name includes", required=False)
    station_exclude = forms.CharField(label="Station name excludes", required=False)
    station_study_level = forms.BooleanField(
        label="Filter station names at study level (default: series level)", required=False
    )
    toshiba = forms.BooleanField(label="CT without dose SR: fetch dose screens and first "
                                 "images (Toshiba)", required=False)
    emptysr = forms.BooleanField(label="Treat SR series with no instances as dose reports",
                                 required=False)
    dup = forms.BooleanField(label="Also retrieve objects already imported", required=False)

    def build(self, data: dict[str, Any], **dates: Any) -> QueryParams:
        return QueryParams(
            modalities=list(data.get("modalities") or []), sr_only=bool(data.get("sr_only")),
            desc_include=parse_terms(data.get("desc_include")),
            desc_exclude=parse_terms(data.get("desc_exclude")),
            station_include=parse_terms(data.get("station_include")),
            station_exclude=parse_terms(data.get("station_exclude")),
            station_study_level=bool(data.get("station_study_level")),
            toshiba=bool(data.get("toshiba")), emptysr=bool(data.get("emptysr")),
            dup=bool(data.get("dup")), **dates,
        )


class QueryForm(QueryOptions):
    date_from = forms.DateField(label="From", required=False, initial=_yesterday,
                                widget=DATE)
    date_until = forms.DateField(label="Until", required=False, initial=dt.date.today,
                                 widget=DATE)
    time_from = forms.CharField(label="From time (HHMM)", required=False, max_length=5,
                                help_text="Only with a single date.")
    time_until = forms.CharField(label="Until time (HHMM)", required=False, max_length=5)
    auto_move = forms.BooleanField(label="Retrieve as soon as the query is done",
                                   required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if not data.get("date_from") and not data.get("date_until"):
            raise forms.ValidationError("Give at least one date: a query without dates "
                                        "would ask for the whole archive.")
        try:
            data["params"] = self.build(
                data, date_from=data.get("date_from"), date_until=data.get("date_until"),
                time_from=data.get("time_from") or "", time_until=data.get("time_until") or "",
            ).normalized()
        except ParamError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class ScheduleForm(QueryOptions):
    name = forms.CharField(max_length=64)
    every_minutes = forms.IntegerField(min_value=5, max_value=7 * 24 * 60, initial=60,
                                       label="Run every (minutes)")
    last_hours = forms.IntegerField(min_value=1, max_value=24 * 31, initial=2,
                                    label="Over the last (hours)")
    move = forms.BooleanField(label="Retrieve what the query selects", required=False,
                              initial=True)

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if ScheduledQuery.objects.filter(name=name).exists():
            raise forms.ValidationError("A scheduled query with this name exists.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        today = dt.date.today()
        try:
            params = self.build(data, date_from=today, date_until=today).normalized()
        except ParamError as exc:
            raise forms.ValidationError(str(exc)) from None
        params.date_from = params.date_until = None
        data["params"] = params
        return data

    def save(self) -> ScheduledQuery:
        data = self.cleaned_data
        return ScheduledQuery.objects.create(
            name=data["name"], remote=data["remote"], store=data["store"],
            params=data["params"].to_json(), every_minutes=data["every_minutes"],
            last_hours=data["last_hours"], move=data["move"],
        )


class HistoryFilter(forms.Form):
    remote = forms.ModelChoiceField(RemoteNode.objects.all(), required=False,
                                    empty_label="any remote")
    status = forms.ChoiceField(choices=[("", "any status"), *Status.choices], required=False)
    since = forms.DateField(required=False, widget=DATE)
    until = forms.DateField(required=False, widget=DATE)
