with {}; "${x}"
