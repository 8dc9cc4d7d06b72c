! runtime_frames.f90 -- allocations made for the program by the Fortran
! runtime: an ALLOCATE, and formatted I/O, whose buffers libgfortran
! allocates.  tests/preload/run.sh checks that every site's first frame is
! in this program, none in libgfortran.
program runtime_frames
    implicit none
    real(8), allocatable :: a(:)
    character(len=32) :: line
    integer :: i
    allocate(a(200000))
    do i = 1, size(a)
        a(i) = i
    end do
    do i = 1, 200
        write(line, '(F16.1)') a(i) * 2
    end do
    print '(A)', trim(adjustl(line))
    print '(F16.1)', sum(a)
    deallocate(a)
end program runtime_frames
