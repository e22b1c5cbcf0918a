"""Dose data model: one Study per dose report set, its events and accumulated totals.

Units are in the field names (see /EXPORT_SCHEMA.md). Date-times are stored as the
modality recorded them, interpreted as UTC (no zone conversion on the way out).
"""

from __future__ import annotations

from django.db import models

from lib import identity


class Study(models.Model):
    CT, DX, RF, MG, NM = "CT", "DX", "RF", "MG", "NM"
    MODALITY_CHOICES = [(m, m) for m in (CT, DX, RF, MG, NM)]

    study_instance_uid = models.CharField(max_length=64, db_index=True)
    modality_type = models.CharField(max_length=2, choices=MODALITY_CHOICES, db_index=True)
    study_date = models.DateField(null=True, blank=True, db_index=True)
    study_time = models.TimeField(null=True, blank=True)
    study_id = models.CharField(max_length=16, blank=True, default="")
    accession_number = models.CharField(max_length=64, blank=True, default="", db_index=True)
    study_description = models.CharField(max_length=256, blank=True, default="")
    # Equipment that made the dose report or image.
    manufacturer = models.CharField(max_length=128, blank=True, default="")
    manufacturer_model_name = models.CharField(max_length=128, blank=True, default="")
    station_name = models.CharField(max_length=64, blank=True, default="", db_index=True)
    institution_name = models.CharField(max_length=128, blank=True, default="")
    device_serial_number = models.CharField(max_length=64, blank=True, default="")
    software_versions = models.CharField(max_length=256, blank=True, default="")
    # Patient (study level); identity only when DOSEPORT_PATIENT_IDENTITY allows it.
    patient_sex = models.CharField(max_length=16, blank=True, default="")
    patient_age = models.CharField(max_length=4, blank=True, default="")
    patient_age_decimal_years = models.FloatField(null=True, blank=True)
    patient_size_m = models.FloatField(null=True, blank=True)
    patient_weight_kg = models.FloatField(null=True, blank=True)
    patient_name = models.CharField(max_length=256, blank=True, default="")
    patient_id = models.CharField(max_length=128, blank=True, default="")
    patient_birth_date = models.CharField(max_length=64, blank=True, default="")
    # How name, id and birth date were hashed (DOSEPORT_PATIENT_IDENTITY=hashed): hashes of
    # different schemes (or site keys) never match (lib/identity.py).
    identity_hash = models.CharField(
        max_length=16, blank=True, default="", choices=identity.SCHEMES
    )
    source_sop_instance_uids = models.JSONField(default=list)
    from_report = models.BooleanField(
        default=True,
        help_text="Events come from a dose report; false when built from image headers "
        "(a later dose report for the study then replaces them).",
    )
    # Report-level totals (CT); projection totals live in AccumulatedPlane.
    dlp_total_mGycm = models.FloatField(null=True, blank=True)
    total_number_of_irradiation_events = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The headline numbers, worked out by dose/summary.py from the rows below and stored
    # here for the lists, dose ranges and sorts (schema units; NULL where the study has none).
    headline_events = models.IntegerField(default=0)
    headline_dlp_mGycm = models.FloatField(null=True, blank=True)
    headline_dap_Gym2 = models.FloatField(null=True, blank=True)
    headline_dose_rp_Gy = models.FloatField(null=True, blank=True)
    headline_agd_left_mGy = models.FloatField(null=True, blank=True)
    headline_agd_right_mGy = models.FloatField(null=True, blank=True)
    headline_agd_both_mGy = models.FloatField(null=True, blank=True)
    headline_activity_MBq = models.FloatField(null=True, blank=True)
    headline_protocols = models.TextField(
        blank=True, default="", help_text="The events' distinct acquisition protocols, one "
        "per line: what the Studies page's text search reads.",
    )

    class Meta:
        ordering = ["-study_date", "-study_time", "-id"]
        verbose_name_plural = "studies"
        indexes = [
            # The Studies list (dose/queries.py): its default order newest first, one
            # modality newest first, the dose ranges and sorts, the live refresh.
            models.Index(fields=["study_date", "study_time", "id"],
                         name="dose_study_newest_idx"),
            models.Index(fields=["modality_type", "study_date", "study_time", "id"],
                         name="dose_study_modality_newest_idx"),
            models.Index(fields=["modality_type", "headline_dlp_mGycm"],
                         name="dose_study_dlp_idx"),
            models.Index(fields=["modality_type", "headline_dap_Gym2"],
                         name="dose_study_dap_idx"),
            models.Index(fields=["modality_type", "headline_activity_MBq"],
                         name="dose_study_activity_idx"),
            models.Index(fields=["updated_at"], name="dose_study_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.modality_type} {self.study_instance_uid}"


class IrradiationEvent(models.Model):
    """One irradiation event (CT acquisition, projection exposure, mammography view)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="events")
    ordinal = models.PositiveIntegerField(default=0)
    irradiation_event_uid = models.CharField(max_length=128, blank=True, default="", db_index=True)
    date_time_started = models.DateTimeField(null=True, blank=True)
    acquisition_protocol = models.TextField(blank=True, default="")
    irradiation_event_type = models.CharField(max_length=128, blank=True, default="")
    target_region = models.CharField(max_length=128, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    # CT
    ct_acquisition_type = models.CharField(max_length=64, blank=True, default="")
    ctdivol_mGy = models.FloatField(null=True, blank=True)
    dlp_mGycm = models.FloatField(null=True, blank=True)
    ctdiw_phantom_type = models.CharField(max_length=128, blank=True, default="")
    scanning_length_mm = models.FloatField(null=True, blank=True)
    nominal_single_collimation_width_mm = models.FloatField(null=True, blank=True)
    nominal_total_collimation_width_mm = models.FloatField(null=True, blank=True)
    pitch_factor = models.FloatField(null=True, blank=True)
    exposure_time_s = models.FloatField(null=True, blank=True)
    number_of_xray_sources = models.IntegerField(null=True, blank=True)
    dose_check = models.JSONField(null=True, blank=True)
    # Projection (DX, RF, MG)
    acquisition_plane = models.CharField(max_length=32, blank=True, default="")
    dap_Gym2 = models.FloatField(null=True, blank=True)
    dose_rp_Gy = models.FloatField(null=True, blank=True)
    kvp_kV = models.FloatField(null=True, blank=True)
    exposure_time_ms = models.FloatField(null=True, blank=True)
    exposure_uAs = models.FloatField(null=True, blank=True)
    average_tube_current_mA = models.FloatField(null=True, blank=True)
    number_of_pulses = models.FloatField(null=True, blank=True)
    pulse_width_ms = models.FloatField(null=True, blank=True)
    focal_spot_size_mm = models.FloatField(null=True, blank=True)
    distance_source_to_detector_mm = models.FloatField(null=True, blank=True)
    collimated_field_area_m2 = models.FloatField(null=True, blank=True)
    positioner_primary_angle_deg = models.FloatField(null=True, blank=True)
    positioner_secondary_angle_deg = models.FloatField(null=True, blank=True)
    exposure_index = models.FloatField(null=True, blank=True)
    target_exposure_index = models.FloatField(null=True, blank=True)
    deviation_index = models.FloatField(null=True, blank=True)
    entrance_exposure_at_rp_mGy = models.FloatField(null=True, blank=True)
    # Mammography
    agd_mGy = models.FloatField(null=True, blank=True)
    compression_thickness_mm = models.FloatField(null=True, blank=True)
    compression_force_N = models.FloatField(null=True, blank=True)
    laterality = models.CharField(max_length=32, blank=True, default="")
    laterality_code = models.CharField(
        max_length=1, blank=True, default="", help_text="L, R or B (both), whatever the source"
    )
    image_view = models.CharField(max_length=64, blank=True, default="")
    anode_target_material = models.CharField(max_length=64, blank=True, default="")
    hvl_mm = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["study_id", "ordinal", "id"]

    def __str__(self) -> str:
        return f"event {self.ordinal} of study {self.study_id}"


class XraySource(models.Model):
    """CT X-ray source parameters (one per tube; dual-source scanners have two)."""

    event = models.ForeignKey(IrradiationEvent, on_delete=models.CASCADE, related_name="sources")
    ordinal = models.PositiveIntegerField(default=0)
    identification = models.CharField(max_length=32, blank=True, default="")
    kvp_kV = models.FloatField(null=True, blank=True)
    tube_current_mA = models.FloatField(null=True, blank=True)
    max_tube_current_mA = models.FloatField(null=True, blank=True)
    exposure_time_per_rotation_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["event_id", "ordinal"]

    def __str__(self) -> str:
        return f"source {self.ordinal} of event {self.event_id}"


class XrayFilter(models.Model):
    event = models.ForeignKey(IrradiationEvent, on_delete=models.CASCADE, related_name="filters")
    ordinal = models.PositiveIntegerField(default=0)
    filter_type = models.CharField(max_length=64, blank=True, default="")
    material = models.CharField(max_length=64, blank=True, default="")
    thickness_min_mm = models.FloatField(null=True, blank=True)
    thickness_max_mm = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["event_id", "ordinal"]

    def __str__(self) -> str:
        return f"{self.material} filter of event {self.event_id}"


class AccumulatedPlane(models.Model):
    """Accumulated projection X-ray dose for one plane (single plane, A or B)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="planes")
    plane = models.CharField(max_length=32, blank=True, default="")
    dap_total_Gym2 = models.FloatField(null=True, blank=True)
    dose_rp_total_Gy = models.FloatField(null=True, blank=True)
    fluoro_dap_total_Gym2 = models.FloatField(null=True, blank=True)
    fluoro_dose_rp_total_Gy = models.FloatField(null=True, blank=True)
    acquisition_dap_total_Gym2 = models.FloatField(null=True, blank=True)
    acquisition_dose_rp_total_Gy = models.FloatField(null=True, blank=True)
    total_fluoro_time_s = models.FloatField(null=True, blank=True)
    total_acquisition_time_s = models.FloatField(null=True, blank=True)
    total_number_of_radiographic_frames = models.IntegerField(null=True, blank=True)
    reference_point_definition = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["study_id", "id"]

    def __str__(self) -> str:
        return f"plane {self.plane} of study {self.study_id}"


class AccumulatedBreast(models.Model):
    """Accumulated average glandular dose for one breast."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="breasts")
    laterality = models.CharField(max_length=32)
    accumulated_agd_mGy = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["study_id", "id"]

    def __str__(self) -> str:
        return f"{self.laterality} breast of study {self.study_id}"


class RadiopharmaceuticalAdministration(models.Model):
    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="administrations"
    )
    ordinal = models.PositiveIntegerField(default=0)
    event_uid = models.CharField(max_length=128, blank=True, default="")
    radiopharmaceutical_agent = models.CharField(max_length=128, blank=True, default="")
    radionuclide = models.CharField(max_length=128, blank=True, default="")
    radionuclide_half_life_s = models.FloatField(null=True, blank=True)
    administered_activity_MBq = models.FloatField(null=True, blank=True)
    radiopharmaceutical_start_datetime = models.DateTimeField(null=True, blank=True)
    radiopharmaceutical_stop_datetime = models.DateTimeField(null=True, blank=True)
    route_of_administration = models.CharField(max_length=128, blank=True, default="")
    effective_dose_mSv = models.FloatField(null=True, blank=True)
    from_report = models.BooleanField(
        default=False, help_text="From a radiopharmaceutical dose report (else image headers)."
    )

    class Meta:
        ordering = ["study_id", "ordinal", "id"]

    def __str__(self) -> str:
        return f"{self.radiopharmaceutical_agent} for study {self.study_id}"


# Web exports that the worker writes (its own module: a job, not dose data).
from dose.export_job import ExportJob  # noqa: E402,F401
